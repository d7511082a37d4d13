# Sourced by .ci/run: a PostgreSQL server for the tests, and one database of
# this run's own on it. On a machine that already runs PostgreSQL 15 on
# 127.0.0.1:5432 with trust auth (the project's machines) every step here
# finds its work done and changes nothing.

CI_PG_HOST=127.0.0.1
CI_PG_PORT=5432
# Where Debian keeps the clusters' configuration (a variable only so this can be tried on a copy).
CI_PG_ETC=${CI_PG_ETC:-/etc/postgresql}

ci_postgres_fail() {
  echo "ci: $*" >&2
  exit 1
}

# Installs (Debian), configures and starts the local PostgreSQL cluster, then
# waits until it answers on 127.0.0.1:5432.
ci_postgres_up() {
  if ! command -v pg_lsclusters >/dev/null; then
    echo "ci: PostgreSQL is not installed; installing Debian's postgresql package"
    # The package creates the cluster `main` of its version.
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } ||
      ci_postgres_fail "cannot install PostgreSQL (apt-get install postgresql failed)"
  fi
  local version
  version=$(ls "$CI_PG_ETC" 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$version" ] || ci_postgres_fail "PostgreSQL is installed but $CI_PG_ETC holds no cluster"
  local conf="$CI_PG_ETC/$version/main"
  [ -f "$conf/pg_hba.conf" ] || ci_postgres_fail "no cluster 'main' for PostgreSQL $version ($conf/pg_hba.conf is missing)"
  local reload=no
  # The tests connect as postgres over TCP without a password. A fresh Debian
  # cluster asks for one (scram-sha-256); pg_hba.conf takes the first line
  # that matches, so trust for 127.0.0.1 goes before every other rule.
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust([[:space:]]|$)' "$conf/pg_hba.conf"; then
    echo "ci: allowing password-less connections from 127.0.0.1 in $conf/pg_hba.conf"
    sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
    reload=yes
  fi
  if pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" && $4 ~ /^online/ { found = 1 } END { exit !found }'; then
    if [ "$reload" = yes ]; then
      pg_ctlcluster --skip-systemctl-redirect "$version" main reload || ci_postgres_fail "cannot reload PostgreSQL $version after changing pg_hba.conf"
    fi
  else
    echo "ci: starting PostgreSQL $version (cluster main)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
      ci_postgres_fail "cannot start PostgreSQL $version (see /var/log/postgresql/postgresql-$version-main.log)"
  fi
  local waited=0
  until pg_isready -q -h "$CI_PG_HOST" -p "$CI_PG_PORT"; do
    [ "$waited" -lt 30 ] ||
      ci_postgres_fail "PostgreSQL $version does not answer on $CI_PG_HOST:$CI_PG_PORT after 30 s (see /var/log/postgresql/postgresql-$version-main.log)"
    sleep 1
    waited=$((waited + 1))
  done
}

ci_psql() {
  psql -X -q -w -v ON_ERROR_STOP=1 -h "$CI_PG_HOST" -p "$CI_PG_PORT" -U postgres -d postgres "$@"
}

# Creates this run's database, exports TEST_POSTGRES_URL naming it (the tests
# make their own databases on that server through it), and drops it when the
# calling shell exits, whatever the outcome.
ci_postgres_database() {
  CI_PG_DATABASE="arbiter_ci_$(date +%s)_$$"
  ci_psql -c "CREATE DATABASE \"$CI_PG_DATABASE\"" ||
    ci_postgres_fail "cannot create database $CI_PG_DATABASE on $CI_PG_HOST:$CI_PG_PORT as user postgres"
  trap ci_postgres_drop EXIT
  export TEST_POSTGRES_URL="postgresql://postgres@$CI_PG_HOST:$CI_PG_PORT/$CI_PG_DATABASE"
  echo "ci: tests use PostgreSQL at $TEST_POSTGRES_URL"
}

ci_postgres_drop() {
  ci_psql -c "DROP DATABASE IF EXISTS \"$CI_PG_DATABASE\" WITH (FORCE)" ||
    echo "ci: could not drop database $CI_PG_DATABASE" >&2
}
