-- The same as `bigbrotr`'s. What the synchronizer could not store, and why:
-- events larger than the configured limit (or messages larger than the
-- WebSocket limit, whose event id may be unknown) and events a batch insert
-- refused. Every implementation provides the same table and function.
--
-- A relay can serve whatever it likes; one bad event must never stop a
-- batch, a relay or the archive. The synchronizer isolates the offending
-- events, stores the rest, records the offenders here, and goes on; a relay's
-- cursor never sticks behind one of them.

CREATE TABLE quarantine (
    id          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relay_id    integer NOT NULL REFERENCES relays (id) ON DELETE CASCADE,
    created_at  bigint,
    event_id    bytea   CHECK (octet_length(event_id) = 32),
    size        bigint  CHECK (size >= 0),
    reason      text    NOT NULL CHECK (reason <> ''),
    recorded_at bigint  NOT NULL
);

CREATE INDEX quarantine_relay_id_idx ON quarantine (relay_id, recorded_at);

COMMENT ON TABLE quarantine IS
    'Events the synchronizer received but did not store, with the relay that served them and why: too large, or refused by the archive when stored. A row goes with its relay.';
COMMENT ON COLUMN quarantine.id IS 'Row number.';
COMMENT ON COLUMN quarantine.relay_id IS 'The relay that served it (relays.id).';
COMMENT ON COLUMN quarantine.created_at IS 'Its created_at (Unix seconds), or the second that holds it; NULL when unknown.';
COMMENT ON COLUMN quarantine.event_id IS 'Its id, when known (a message over the WebSocket limit is never read).';
COMMENT ON COLUMN quarantine.size IS 'Its size in bytes (JSON as received), when known.';
COMMENT ON COLUMN quarantine.reason IS
    '''oversized'': the event is larger than synchronizer.sizes.max_event; ''message_too_large'': the relay''s message broke the WebSocket limit; ''refused: <error>'': the archive refused it when stored.';
COMMENT ON COLUMN quarantine.recorded_at IS 'When it was recorded (Unix seconds).';
COMMENT ON INDEX quarantine_relay_id_idx IS 'The quarantined events of one relay, newest last.';

CREATE OR REPLACE FUNCTION insert_quarantine(
    p_relay_id    integer,
    p_created_at  bigint,
    p_event_id    bytea,
    p_size        bigint,
    p_reason      text,
    p_recorded_at bigint
)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO quarantine (relay_id, created_at, event_id, size, reason, recorded_at)
    VALUES (p_relay_id, p_created_at, p_event_id, p_size, left(p_reason, 512), p_recorded_at)
$$;

COMMENT ON FUNCTION insert_quarantine(integer, bigint, bytea, bigint, text, bigint) IS
    'Records that relay p_relay_id served an event that was not stored (see the table quarantine); the reason is cut to 512 characters.';
