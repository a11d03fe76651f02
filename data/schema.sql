-- rlprice schema (applied by `rlprice db init`; idempotent).
-- History tables (products, sales, competitor_prices) are read by rlprice; run tables
-- (pricing_runs, price_recommendations, rejected_rows) are written by it.

CREATE TABLE IF NOT EXISTS products (
    product_id     text PRIMARY KEY,
    name           text,
    base_price     numeric NOT NULL,
    unit_cost      numeric,
    min_price      numeric,
    max_price      numeric,
    max_change_pct numeric,
    category       text
);
COMMENT ON TABLE products IS 'One row per priced product; guardrail bounds are optional.';
COMMENT ON COLUMN products.base_price IS 'Reference (list) price; the price grid is relative to it.';
COMMENT ON COLUMN products.unit_cost IS 'Cost of one unit; enables profit rewards and the margin floor.';
COMMENT ON COLUMN products.min_price IS 'Lowest price rlprice may recommend (NULL = no bound).';
COMMENT ON COLUMN products.max_price IS 'Highest price rlprice may recommend (NULL = no bound).';
COMMENT ON COLUMN products.max_change_pct IS 'Largest change per period, percent of the incumbent price.';
COMMENT ON COLUMN products.category IS 'Grouping for pooled models when a product has too little history.';

CREATE TABLE IF NOT EXISTS sales (
    product_id text NOT NULL REFERENCES products (product_id),
    day        date NOT NULL,
    price      numeric,
    units      numeric,
    revenue    numeric,
    traffic    numeric,
    promo      boolean,
    PRIMARY KEY (product_id, day)
);
COMMENT ON TABLE sales IS 'Daily (or weekly: the week''s date) sales per product.';
COMMENT ON COLUMN sales.price IS 'Price charged that period.';
COMMENT ON COLUMN sales.units IS 'Units sold.';
COMMENT ON COLUMN sales.revenue IS 'Revenue (about price x units).';
COMMENT ON COLUMN sales.traffic IS 'Unique visitors (UV) of the product page; NULL when unknown.';
COMMENT ON COLUMN sales.promo IS 'A promotion ran that period.';
CREATE INDEX IF NOT EXISTS sales_day_idx ON sales (day);

CREATE TABLE IF NOT EXISTS competitor_prices (
    product_id text NOT NULL,
    day        date NOT NULL,
    competitor text NOT NULL,
    price      numeric,
    PRIMARY KEY (product_id, day, competitor)
);
COMMENT ON TABLE competitor_prices IS 'Observed competitor prices for the same or an equivalent product.';
COMMENT ON COLUMN competitor_prices.competitor IS 'Competitor name (free text; one column per name in the loaded history).';
CREATE INDEX IF NOT EXISTS competitor_prices_day_idx ON competitor_prices (day);

CREATE TABLE IF NOT EXISTS pricing_runs (
    run_id       text PRIMARY KEY,
    run_date     date NOT NULL,
    status       text NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'dry_run')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    config       text,
    n_products   integer,
    n_repriced   integer,
    n_held       integer,
    n_rejected_rows integer,
    summary      text
);
COMMENT ON TABLE pricing_runs IS 'One row per pricing run (run_id is derived from the date and configuration, so a re-run replaces it when its push commits; a finished row is never reset by a later attempt).';

CREATE TABLE IF NOT EXISTS pricing_run_attempts (
    run_id      text NOT NULL REFERENCES pricing_runs (run_id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    status      text NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'abandoned')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    message     text,
    PRIMARY KEY (run_id, attempt)
);
COMMENT ON TABLE pricing_run_attempts IS 'Every attempt at a run id (1, 2, ...): running, then finished (in the push transaction), failed (with the reason) or abandoned (its process ended without an outcome, found by a later run).';

CREATE TABLE IF NOT EXISTS price_recommendations (
    run_id          text NOT NULL REFERENCES pricing_runs (run_id) ON DELETE CASCADE,
    product_id      text NOT NULL,
    effective_day   date NOT NULL,
    price           numeric NOT NULL,
    incumbent_price numeric,
    agent           text NOT NULL,
    reason          text,
    expected_uplift numeric,
    ci_low          numeric,
    ci_high         numeric,
    PRIMARY KEY (run_id, product_id)
);
COMMENT ON TABLE price_recommendations IS 'Guarded prices pushed by a run, with the agent and reason codes.';
CREATE INDEX IF NOT EXISTS price_recommendations_product_idx ON price_recommendations (product_id, effective_day);

-- Logged exploration and exact propensities (docs/nightly.md, "Logged exploration"; docs/ope.md,
-- "Logged propensities").  ADD COLUMN IF NOT EXISTS is the migration of a database made before
-- these columns existed: its old rows keep NULL (propensity unknown: OPE estimates it there).
ALTER TABLE price_recommendations ADD COLUMN IF NOT EXISTS propensity double precision
    CHECK (propensity > 0 AND propensity <= 1);
ALTER TABLE price_recommendations ADD COLUMN IF NOT EXISTS support_prices numeric[];
ALTER TABLE price_recommendations ADD COLUMN IF NOT EXISTS support_probs double precision[];
ALTER TABLE price_recommendations ADD COLUMN IF NOT EXISTS decided_price numeric;
COMMENT ON COLUMN price_recommendations.propensity IS 'Probability with which price was drawn (1 = deterministic, no exploration; NULL = pushed before propensities were recorded).';
COMMENT ON COLUMN price_recommendations.support_prices IS 'Every price the run could have pushed for the product (the distribution''s support, as the decimals pushed).';
COMMENT ON COLUMN price_recommendations.support_probs IS 'Probability of each support price (same order; sums to 1).';
COMMENT ON COLUMN price_recommendations.decided_price IS 'The decision''s guarded price before exploration (equal to price when not explored).';
ALTER TABLE products ADD COLUMN IF NOT EXISTS explore boolean;
COMMENT ON COLUMN products.explore IS 'false = pinned by the pricing team: the nightly never explores this product''s price (NULL or true: it may, when nightly.explore.share > 0).';
ALTER TABLE pricing_runs ADD COLUMN IF NOT EXISTS n_explored integer;
ALTER TABLE pricing_runs ADD COLUMN IF NOT EXISTS explore_cost double precision;
ALTER TABLE pricing_runs ADD COLUMN IF NOT EXISTS explore_cost_share double precision;
COMMENT ON COLUMN pricing_runs.n_explored IS 'Products whose pushed price was an exploration draw (not the decided price).';
COMMENT ON COLUMN pricing_runs.explore_cost IS 'Expected revenue per period given up by the exploration draws, by the engine''s own demand estimate (NULL when exploration was off).';
COMMENT ON COLUMN pricing_runs.explore_cost_share IS 'explore_cost as a share of the night''s expected revenue per period at the decided prices.';

CREATE TABLE IF NOT EXISTS rejected_rows (
    run_id     text NOT NULL,
    table_name text NOT NULL,
    row_key    text NOT NULL,
    reason     text NOT NULL,
    PRIMARY KEY (run_id, table_name, row_key, reason)
);
COMMENT ON TABLE rejected_rows IS 'Input rows quarantined by validation, with the rule they broke.';
COMMENT ON COLUMN rejected_rows.row_key IS 'The row''s key: product_id|day (sales), product_id|day|competitor (competitor_prices), product_id (products).';
