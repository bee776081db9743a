-- Communication history per contact, one row per contact.communication_added event.
SELECT
    e.contact_id,
    json_extract_string(CAST(e.payload AS JSON), '$.data.communication.id') AS communication_id,
    json_extract_string(CAST(e.payload AS JSON), '$.data.communication.channel') AS channel,
    json_extract_string(CAST(e.payload AS JSON), '$.data.communication.direction') AS direction,
    json_extract_string(CAST(e.payload AS JSON), '$.data.communication.subject') AS subject,
    json_extract_string(CAST(e.payload AS JSON), '$.data.communication.body') AS body,
    e.occurred_at AS recorded_at,
    e.received_at,
    e.event_id
FROM contact_events AS e
WHERE e.event = 'contact.communication_added'
