#!/bin/bash
# The `app` service of docker/compose.yaml: a small, realistic workload so the recorder has something to see.
# Runs in the mysql:8.4 image with its `mysql` client, as the `app` user on database `shop`.
# Every round (about 20 s): short OLTP statements, a few slow SELECT SLEEP() reports running in parallel, and a
# row-lock pile-up (one transaction holds a row lock for 8 s while two others wait for it), so
# `plsnap at` shows sessions in "updating" blocked behind the holder.
# Environment (defaults fit compose.yaml): DB_HOST, DB_USER, DB_NAME, DB_PASSWORD_FILE, ROUNDS (0 = forever).
set -euo pipefail

MYSQL_PWD="$(cat "${DB_PASSWORD_FILE:-/run/secrets/app_password}")"
export MYSQL_PWD
sql() {
  mysql --host="${DB_HOST:-mysql}" --user="${DB_USER:-app}" --database="${DB_NAME:-shop}" \
    --batch --skip-column-names "$@"
}

until sql -e 'SELECT 1' >/dev/null 2>&1; do sleep 2; done
sql <<'SQL'
CREATE TABLE IF NOT EXISTS orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer INT NOT NULL,
  amount DECIMAL(10,2) NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'new',
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY (customer)
);
CREATE TABLE IF NOT EXISTS stock (sku INT PRIMARY KEY, qty INT NOT NULL);
INSERT IGNORE INTO stock VALUES (1, 1000), (2, 1000), (3, 1000);
SQL
echo "load: schema ready, starting rounds"

round=0
while true; do
  round=$((round + 1))
  # OLTP: one connection, inserts and point reads
  for _ in $(seq 1 20); do
    echo "INSERT INTO orders (customer, amount) VALUES ($((RANDOM % 500)), $((RANDOM % 10000)) / 100);"
    echo "SELECT id, amount, status FROM orders WHERE customer = $((RANDOM % 500)) ORDER BY id DESC LIMIT 5;"
  done | sql >/dev/null
  # Slow reports, in parallel
  sql -e "SELECT SLEEP(6) AS report_daily, COUNT(*) FROM orders" >/dev/null &
  # (no GROUP BY: SLEEP() runs once per result row)
  sql -e "SELECT SLEEP(4) AS report_totals, COUNT(DISTINCT customer), SUM(amount) FROM orders" >/dev/null &
  # Lock wait: the holder updates a row, then sleeps inside its transaction; two writers wait on that row.
  sql -e "START TRANSACTION; UPDATE stock SET qty = qty - 1 WHERE sku = 1; DO SLEEP(8); COMMIT" &
  sleep 1
  sql -e "UPDATE stock SET qty = qty - 1 WHERE sku = 1" &
  sql -e "UPDATE stock SET qty = qty + 1 WHERE sku = 1" &
  wait
  # Keep the table small.
  sql -e "DELETE FROM orders WHERE created_at < NOW() - INTERVAL 1 HOUR"
  echo "load: round ${round} done"
  if [ "${ROUNDS:-0}" -gt 0 ] && [ "${round}" -ge "${ROUNDS}" ]; then break; fi
  sleep 10
done
