-- Retention of relay checks: delete_old_relay_metadata(), called by the
-- cleanups of the refresher service when brotr.relay_metadata_retention is
-- set. The NIP-11 and NIP-66 documents the deleted checks referred to become
-- orphans, removed by delete_orphan_nip11/66() afterwards.

CREATE OR REPLACE FUNCTION delete_old_relay_metadata(p_before bigint, p_limit integer)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'delete_old_relay_metadata: p_limit must be at least 1, not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Rows locked by a concurrent call are skipped: cleanups never wait for
    -- each other. A relay's latest check is never deleted, whatever its age,
    -- so relay_metadata_latest keeps a row for every relay ever checked.
    WITH doomed AS (
        SELECT m.relay_id, m.generated_at
        FROM relay_metadata AS m
        WHERE m.generated_at < p_before
          AND EXISTS (
              SELECT 1
              FROM relay_metadata AS newer
              WHERE newer.relay_id = m.relay_id
                AND newer.generated_at > m.generated_at
          )
        LIMIT p_limit
        FOR UPDATE OF m SKIP LOCKED
    )
    DELETE FROM relay_metadata AS m
    USING doomed AS d
    WHERE m.relay_id = d.relay_id
      AND m.generated_at = d.generated_at;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

COMMENT ON FUNCTION delete_old_relay_metadata(bigint, integer) IS
    'Deletes up to p_limit relay checks (relay_metadata rows) generated before p_before (Unix seconds), never the latest check of a relay, and returns how many; call it again until it returns 0. Rows a concurrent call holds are skipped. p_limit below 1 raises SQLSTATE 22023.';
