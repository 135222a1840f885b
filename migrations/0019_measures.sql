-- R4.3.3 improvement measures: what will change because of a finding, who owns it, by when,
-- and the figure it aims at (named as the findings name it, analytics/measures.py). The
-- reports show each with that figure before it was taken and in the period reported.
CREATE TABLE measures (
    measure_id   bigserial PRIMARY KEY,
    finding_kind text NOT NULL,
    subject      text NOT NULL,
    figure       text NOT NULL,
    what         text NOT NULL,
    owner        text NOT NULL REFERENCES staff (staff_id),
    due          date NOT NULL,
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'dropped')),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz
);
CREATE INDEX measures_created_idx ON measures (created_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE 'REVOKE ALL ON measures FROM orderflow_service';
        EXECUTE 'GRANT SELECT ON measures TO orderflow_service';  -- the regular reports
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE (state, closed_at) ON measures TO orderflow_api';
        EXECUTE 'GRANT USAGE ON SEQUENCE measures_measure_id_seq TO orderflow_api';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        EXECUTE 'GRANT SELECT ON measures TO orderflow_reporting';
    END IF;
END
$$;
