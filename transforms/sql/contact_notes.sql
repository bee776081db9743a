-- Notes attached to contacts, one row per contact.note_added event (from lynkist listen).
SELECT
    e.contact_id,
    json_extract_string(CAST(e.payload AS JSON), '$.data.note.id') AS note_id,
    json_extract_string(CAST(e.payload AS JSON), '$.data.note.body') AS body,
    json_extract_string(CAST(e.payload AS JSON), '$.data.note.author') AS author,
    e.occurred_at AS added_at,
    e.received_at,
    e.event_id
FROM contact_events AS e
WHERE e.event = 'contact.note_added'
