-- Views of the `bigbrotr` implementation.

CREATE OR REPLACE VIEW relay_metadata_latest AS
SELECT r.id          AS relay_id,
       r.url,
       r.network,
       m.generated_at,
       m.connected,
       m.nip11_id,
       n11.data      AS nip11_data,
       m.nip66_id,
       n66.data      AS nip66_data
FROM relays AS r
-- The primary key (relay_id, generated_at) gives each relay's latest row
-- with one backward index probe.
CROSS JOIN LATERAL (
    SELECT rm.generated_at, rm.connected, rm.nip11_id, rm.nip66_id
    FROM relay_metadata AS rm
    WHERE rm.relay_id = r.id
    ORDER BY rm.generated_at DESC
    LIMIT 1
) AS m
LEFT JOIN nip11 AS n11 ON n11.id = m.nip11_id
LEFT JOIN nip66 AS n66 ON n66.id = m.nip66_id;

COMMENT ON VIEW relay_metadata_latest IS
    'The most recent relay_metadata row of each relay that has one, with the relay''s url and network and the NIP-11 and NIP-66 documents (NULL when none).';
COMMENT ON COLUMN relay_metadata_latest.relay_id IS 'relays.id.';
COMMENT ON COLUMN relay_metadata_latest.url IS 'relays.url.';
COMMENT ON COLUMN relay_metadata_latest.network IS 'relays.network: clearnet or tor.';
COMMENT ON COLUMN relay_metadata_latest.generated_at IS 'When the latest check was made (Unix seconds).';
COMMENT ON COLUMN relay_metadata_latest.connected IS 'Whether the latest check reached the relay.';
COMMENT ON COLUMN relay_metadata_latest.nip11_id IS 'Hash of the NIP-11 document of the latest check, NULL when none.';
COMMENT ON COLUMN relay_metadata_latest.nip11_data IS 'The NIP-11 document of the latest check, NULL when none.';
COMMENT ON COLUMN relay_metadata_latest.nip66_id IS 'Hash of the NIP-66 measurements of the latest check, NULL when none.';
COMMENT ON COLUMN relay_metadata_latest.nip66_data IS 'The NIP-66 measurements of the latest check, NULL when none.';
