#!/usr/bin/env bash
# Start the real servers the tests use, on loopback only, idempotently (safe to run twice).
# MariaDB on 127.0.0.1:3306 and PostgreSQL on 127.0.0.1:5432, each with a database and user
# "acctwatch"/"acctwatch". Prints the environment variables the tests read.
set -euo pipefail

PGDATA=${PGDATA:-/var/tmp/acctwatch-pg}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

start_mariadb() {
    if ! command -v mariadbd >/dev/null; then echo "services: mariadbd not installed" >&2; return 1; fi
    if ! mariadb-admin ping >/dev/null 2>&1; then
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        if [ ! -d /var/lib/mysql/mysql ]; then
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
        fi
        (mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 >/var/tmp/acctwatch-mariadb.log 2>&1 &)
        for _ in $(seq 1 60); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    mariadb-admin ping >/dev/null
    mariadb -e "CREATE DATABASE IF NOT EXISTS acctwatch_test CHARACTER SET utf8mb4;
                CREATE USER IF NOT EXISTS 'acctwatch'@'127.0.0.1' IDENTIFIED BY 'acctwatch';
                CREATE USER IF NOT EXISTS 'acctwatch'@'localhost' IDENTIFIED BY 'acctwatch';
                GRANT ALL ON *.* TO 'acctwatch'@'127.0.0.1' WITH GRANT OPTION;
                GRANT ALL ON *.* TO 'acctwatch'@'localhost' WITH GRANT OPTION;
                FLUSH PRIVILEGES;"
}

start_postgres() {
    if [ -z "$PGBIN" ]; then echo "services: PostgreSQL not installed" >&2; return 1; fi
    if ! "$PGBIN/pg_isready" -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
        if [ ! -f "$PGDATA/PG_VERSION" ]; then
            mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA"
            su postgres -c "$PGBIN/initdb -D $PGDATA -A trust -U postgres" >/dev/null
        fi
        su postgres -c "$PGBIN/pg_ctl -D $PGDATA -l $PGDATA/server.log -w -o '-c listen_addresses=127.0.0.1 -p 5432 -k /tmp' start" >/dev/null
    fi
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='acctwatch'" | grep -q 1 \
        || psql -h 127.0.0.1 -U postgres -c "CREATE ROLE acctwatch LOGIN SUPERUSER PASSWORD 'acctwatch'" >/dev/null
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='acctwatch_test'" | grep -q 1 \
        || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE acctwatch_test OWNER acctwatch" >/dev/null
}

start_mariadb
start_postgres
echo "export ACCTWATCH_TEST_MYSQL_URL=mysql+pymysql://acctwatch:acctwatch@127.0.0.1:3306/acctwatch_test"
echo "export ACCTWATCH_TEST_PG_URL=postgresql+psycopg://acctwatch:acctwatch@127.0.0.1:5432/acctwatch_test"
