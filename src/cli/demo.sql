-- Sample data for `pgsafe demo`: a small shop with a schema of its own, an enum, a domain, foreign keys,
-- indexes, a view, a function, a trigger, comments and an identity column. ORDERS is replaced by the row
-- count the demo asks for, anything up to demo.rs's MAX_ROWS (10^15). So every number below is a bigint
-- that stays in range for that many rows: the row counter, a customer id scattered by multiplying the
-- counter's remainder (not the counter: 7919 times a counter past 271,000 overflows integer, and past
-- 1.16 * 10^15 bigint), and timestamps that wrap around after a few years instead of running past the
-- year 294276.
CREATE SCHEMA shop;
COMMENT ON SCHEMA shop IS 'the demo''s shop';
CREATE TYPE shop.order_status AS ENUM ('new', 'paid', 'shipped', 'returned');
CREATE DOMAIN shop.price AS numeric(12, 2) CHECK (VALUE >= 0);
CREATE TABLE shop.customer (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    country char(2) NOT NULL DEFAULT 'CH',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE shop.product (
    id serial PRIMARY KEY,
    title text NOT NULL,
    price shop.price NOT NULL,
    tags text[],
    attributes jsonb
);
CREATE TABLE shop.orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES shop.customer ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES shop.product,
    quantity integer NOT NULL CHECK (quantity > 0),
    status shop.order_status NOT NULL DEFAULT 'new',
    ordered_at timestamptz NOT NULL,
    note text
);
COMMENT ON TABLE shop.orders IS 'one row per order line';
CREATE INDEX orders_customer ON shop.orders (customer_id);
CREATE INDEX orders_ordered_at ON shop.orders (ordered_at) WHERE status <> 'returned';
CREATE FUNCTION shop.order_total(o shop.orders) RETURNS numeric
    LANGUAGE sql STABLE AS $$ SELECT o.quantity * p.price FROM shop.product p WHERE p.id = o.product_id $$;
CREATE VIEW shop.revenue_by_country AS
    SELECT c.country, count(*) AS orders, sum(shop.order_total(o)) AS revenue
    FROM shop.orders o JOIN shop.customer c ON c.id = o.customer_id
    GROUP BY c.country;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.note := coalesce(NEW.note, 'updated'); RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.touch();

INSERT INTO shop.customer (name, email, country, created_at)
SELECT 'customer ' || i, 'c' || i || '@example.com', (ARRAY['CH', 'DE', 'FR', 'IT', 'AT'])[1 + i % 5],
       timestamptz '2024-01-01' + (i % 5000000) * interval '1 minute'
FROM generate_series(1::bigint, greatest(ORDERS::bigint / 10, 10)) AS i;
INSERT INTO shop.product (title, price, tags, attributes)
SELECT 'product ' || i, (i % 500) + 0.99, ARRAY['tag' || (i % 7), 'tag' || (i % 11)],
       jsonb_build_object('weight', i % 40, 'color', (ARRAY['red', 'green', 'blue'])[1 + i % 3])
FROM generate_series(1, 1000) AS i;
INSERT INTO shop.orders (customer_id, product_id, quantity, status, ordered_at, note)
SELECT 1 + ((i % customers) * 7919) % customers, 1 + i % 1000, 1 + i % 5,
       (ARRAY['new', 'paid', 'shipped', 'returned']::shop.order_status[])[1 + i % 4],
       timestamptz '2024-01-01' + (i % 20000000) * interval '13 seconds',
       CASE WHEN i % 3 = 0 THEN 'gift wrap, order ' || i END
FROM generate_series(1::bigint, ORDERS::bigint) AS i, greatest(ORDERS::bigint / 10, 10) AS customers;
ANALYZE;
