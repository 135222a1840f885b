-- Refused pushes are bounded: bad traffic must not fill the server Temporal shares.
--   refused      a push refused for what it is (bad signature, malformed, too large, too
--                old): bounded, pruned (starter/push_keeper.py). Never pruned: pushes
--                accepted but reaching no workflow (the only record of what they say), and
--                those refused while Temporal or the platform was away (the platform sends
--                them again). Rows from before this migration count as never pruned.
--   source       the address it came from, for the per-source limit and for a person.
--   body_sha256  a push whose signature did not verify keeps this, not its body or query:
--                whoever sent it is unknown, and it may hold anything.
--   field_names  the form's parameter names of such a push: enough to see which ones a
--                signature was computed over, without their values.
ALTER TABLE rejected_pushes
    ADD COLUMN refused     boolean NOT NULL DEFAULT false,
    ADD COLUMN source      text NOT NULL DEFAULT '',
    ADD COLUMN body_sha256 text,
    ADD COLUMN field_names text[];
CREATE INDEX rejected_pushes_refused_idx ON rejected_pushes (push_id) WHERE refused;

-- Every refused push counted, kept or not (over the per-source rate or after the cap): what
-- was refused stays visible when its body is gone.
CREATE TABLE refused_push_counts (
    day      date NOT NULL,
    route    text NOT NULL,
    cause    text NOT NULL,
    refused  bigint NOT NULL DEFAULT 0,
    not_kept bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, route, cause)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON refused_push_counts TO orderflow_service';
        EXECUTE 'GRANT DELETE ON rejected_pushes TO orderflow_service';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        EXECUTE 'GRANT SELECT ON refused_push_counts TO orderflow_reporting';
    END IF;
END
$$;
