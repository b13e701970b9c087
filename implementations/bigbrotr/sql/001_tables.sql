-- Tables and indexes of the `bigbrotr` implementation: the full archive.
--
-- Times are Unix seconds (bigint). Hashes, keys and signatures are raw bytes
-- (bytea), not hex: half the size, and compared byte for byte.

-- ---------------------------------------------------------------------------
-- relays
-- ---------------------------------------------------------------------------
CREATE TABLE relays (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url         text    NOT NULL UNIQUE CHECK (url ~ '^wss?://.'),
    network     text    NOT NULL CHECK (network IN ('clearnet', 'tor')),
    inserted_at bigint  NOT NULL
);

COMMENT ON TABLE relays IS
    'Every Nostr relay BigBrotr knows of, one row per normalised URL.';
COMMENT ON COLUMN relays.id IS
    'Surrogate key, referenced by events_relays and relay_metadata.';
COMMENT ON COLUMN relays.url IS
    'WebSocket URL (ws:// or wss://) as normalised by the application; unique.';
COMMENT ON COLUMN relays.network IS
    'How the relay is reached: clearnet, or tor for .onion hosts.';
COMMENT ON COLUMN relays.inserted_at IS
    'When the relay was first recorded (Unix seconds).';

-- ---------------------------------------------------------------------------
-- events
-- ---------------------------------------------------------------------------
CREATE TABLE events (
    id          bytea   PRIMARY KEY CHECK (octet_length(id) = 32),
    pubkey      bytea   NOT NULL CHECK (octet_length(pubkey) = 32),
    created_at  bigint  NOT NULL,
    kind        integer NOT NULL CHECK (kind BETWEEN 0 AND 65535),
    tags        jsonb   NOT NULL CHECK (jsonb_typeof(tags) = 'array'),
    tags_raw    bytea,
    content     text    NOT NULL,
    content_raw bytea,
    sig         bytea   NOT NULL CHECK (octet_length(sig) = 64),
    tagvalues   text[]  NOT NULL DEFAULT '{}'
);

CREATE INDEX events_pubkey_created_at_idx ON events (pubkey, created_at);
CREATE INDEX events_kind_created_at_idx ON events (kind, created_at);
CREATE INDEX events_created_at_id_idx ON events (created_at, id);
CREATE INDEX events_tagvalues_idx ON events USING gin (tagvalues);

COMMENT ON TABLE events IS
    'Every Nostr event archived, stored losslessly: an event read back (using tags_raw/content_raw when not NULL) has the same id and a valid signature. Where an event was seen is in events_relays.';
COMMENT ON COLUMN events.id IS
    'Event id: SHA-256 of the NIP-01 serialisation, 32 bytes (hex in Nostr messages).';
COMMENT ON COLUMN events.pubkey IS
    'Author''s x-only public key, 32 bytes.';
COMMENT ON COLUMN events.created_at IS
    'Creation time claimed by the author (Unix seconds); not checked against any clock.';
COMMENT ON COLUMN events.kind IS
    'Event kind, 0 to 65535.';
COMMENT ON COLUMN events.tags IS
    'Tags, a JSON array of arrays of strings, for queries. jsonb keeps strings and array order exactly, but cannot hold U+0000: when a tag string contains it, this column holds the tags with every U+0000 replaced by U+FFFD and tags_raw holds the original.';
COMMENT ON COLUMN events.tags_raw IS
    'NULL unless some tag string contains U+0000; then the exact JSON text (UTF-8) of the tags array, and readers must use it instead of tags.';
COMMENT ON COLUMN events.content IS
    'Content, for queries. text cannot hold U+0000: when the content contains it, this column holds the content with every U+0000 replaced by U+FFFD and content_raw holds the original.';
COMMENT ON COLUMN events.content_raw IS
    'NULL unless the content contains U+0000; then the exact UTF-8 bytes of the content, and readers must use it instead of content.';
COMMENT ON COLUMN events.sig IS
    'BIP-340 Schnorr signature of id by pubkey, 64 bytes.';
COMMENT ON COLUMN events.tagvalues IS
    'Values of single-letter tags (tag[0] one ASCII letter, tag[1] a string of at most 256 bytes), each prefixed by its letter and a colon (''e:<hex id>'', ''p:<hex key>'', ''t:nostr''), without duplicates. GIN-indexed: WHERE tagvalues @> ARRAY[''p:<hex>''] finds the events tagging that key. Computed from tags by tags_to_tagvalues().';
COMMENT ON INDEX events_tagvalues_idx IS
    'Tag queries: tagvalues @> ARRAY[''<letter>:<value>''] or tagvalues && ARRAY[...].';

-- ---------------------------------------------------------------------------
-- events_relays
-- ---------------------------------------------------------------------------
-- No declared foreign keys: a per-row foreign-key check costs about as much
-- as the row itself, and this table takes a row for every sighting of every
-- event. Integrity is kept instead by one lock and statement triggers:
--   * insert_events() is the only writer. It holds an advisory lock (key
--     1650619506, 'bbtr' in ASCII) in shared mode until its transaction ends,
--     checks once that the batch's relays exist, and inserts each event in
--     the same statement as the rows that reference it;
--   * every DELETE or TRUNCATE of events or relays takes the same lock in
--     exclusive mode first (trigger *_lock_referenced), so it waits for the
--     inserts in flight and none starts until it commits; then its rows here
--     go too (trigger *_cascade), as ON DELETE CASCADE would do.
CREATE TABLE events_relays (
    event_id bytea   NOT NULL,
    relay_id integer NOT NULL,
    seen_at  bigint  NOT NULL,
    PRIMARY KEY (event_id, relay_id)
);

CREATE INDEX events_relays_relay_id_seen_at_idx ON events_relays (relay_id, seen_at);

COMMENT ON TABLE events_relays IS
    'Provenance: which relay served which event. Every row references an existing event and relay; deleting an event or a relay deletes its rows here (kept by insert_events() and triggers rather than declared foreign keys, for speed). An event with no row here is an orphan, removed by delete_orphan_events().';

-- Referential integrity of events_relays (see above).
CREATE FUNCTION events_relays_lock_referenced()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1650619506);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION events_relays_lock_referenced() IS
    'Before a DELETE or TRUNCATE of events or relays: waits for the insert_events() calls in flight and holds new ones back until the transaction ends.';

CREATE FUNCTION events_relays_cascade()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE events_relays;
    ELSIF TG_TABLE_NAME = 'events' THEN
        DELETE FROM events_relays AS er USING deleted AS d WHERE er.event_id = d.id;
    ELSE
        DELETE FROM events_relays AS er USING deleted AS d WHERE er.relay_id = d.id;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION events_relays_cascade() IS
    'After a DELETE or TRUNCATE of events or relays: deletes the events_relays rows of what was deleted.';

CREATE TRIGGER events_lock_referenced
    BEFORE DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_relays_lock_referenced();
CREATE TRIGGER events_cascade
    AFTER DELETE ON events REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION events_relays_cascade();
CREATE TRIGGER events_cascade_truncate
    AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_relays_cascade();
CREATE TRIGGER relays_lock_referenced
    BEFORE DELETE OR TRUNCATE ON relays
    FOR EACH STATEMENT EXECUTE FUNCTION events_relays_lock_referenced();
CREATE TRIGGER relays_cascade
    AFTER DELETE ON relays REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION events_relays_cascade();
CREATE TRIGGER relays_cascade_truncate
    AFTER TRUNCATE ON relays
    FOR EACH STATEMENT EXECUTE FUNCTION events_relays_cascade();

-- ---------------------------------------------------------------------------
-- nip11, nip66: content-addressed documents
-- ---------------------------------------------------------------------------
CREATE TABLE nip11 (
    id   bytea PRIMARY KEY CHECK (octet_length(id) = 32),
    data jsonb NOT NULL
);

COMMENT ON TABLE nip11 IS
    'NIP-11 relay information documents, content-addressed: relays serving identical documents share one row. Rows referenced by no relay_metadata row are removed by delete_orphan_nip11().';
COMMENT ON COLUMN nip11.id IS
    'SHA-256 of the canonical JSON (keys sorted, no whitespace) of the document, computed by the application; 32 bytes.';
COMMENT ON COLUMN nip11.data IS
    'The document as received (jsonb: object key order and duplicate keys are not kept; U+0000 cannot be stored and is removed by the application before hashing).';

CREATE TABLE nip66 (
    id   bytea PRIMARY KEY CHECK (octet_length(id) = 32),
    data jsonb NOT NULL
);

COMMENT ON TABLE nip66 IS
    'NIP-66 relay measurements (reachability, round-trip times, network, supported NIPs, ...), content-addressed like nip11. Rows referenced by no relay_metadata row are removed by delete_orphan_nip66().';
COMMENT ON COLUMN nip66.id IS
    'SHA-256 of the canonical JSON (keys sorted, no whitespace) of the document, computed by the application; 32 bytes.';
COMMENT ON COLUMN nip66.data IS
    'The measurement document.';

-- ---------------------------------------------------------------------------
-- relay_metadata
-- ---------------------------------------------------------------------------
-- Constraint names are given: insert_relay_metadata() recognises a
-- violation of relay_metadata_nip11_id_fkey/nip66_id_fkey by name.
CREATE TABLE relay_metadata (
    relay_id     integer NOT NULL REFERENCES relays (id) ON DELETE CASCADE,
    generated_at bigint  NOT NULL,
    connected    boolean NOT NULL,
    nip11_id     bytea   CONSTRAINT relay_metadata_nip11_id_fkey REFERENCES nip11 (id),
    nip66_id     bytea   CONSTRAINT relay_metadata_nip66_id_fkey REFERENCES nip66 (id),
    PRIMARY KEY (relay_id, generated_at)
);

-- For delete_orphan_nip11/66() and for the foreign-key checks when a document is deleted.
CREATE INDEX relay_metadata_nip11_id_idx ON relay_metadata (nip11_id) WHERE nip11_id IS NOT NULL;
CREATE INDEX relay_metadata_nip66_id_idx ON relay_metadata (nip66_id) WHERE nip66_id IS NOT NULL;

COMMENT ON TABLE relay_metadata IS
    'One check of one relay: whether it could be reached, and the NIP-11 and NIP-66 documents obtained. relay_metadata_latest shows the most recent row per relay.';
COMMENT ON COLUMN relay_metadata.relay_id IS
    'The relay checked (relays.id).';
COMMENT ON COLUMN relay_metadata.generated_at IS
    'When the check was made (Unix seconds).';
COMMENT ON COLUMN relay_metadata.connected IS
    'Whether a WebSocket connection to the relay succeeded.';
COMMENT ON COLUMN relay_metadata.nip11_id IS
    'The NIP-11 document served (nip11.id), NULL when none was obtained.';
COMMENT ON COLUMN relay_metadata.nip66_id IS
    'The NIP-66 measurements (nip66.id), NULL when none were made.';
