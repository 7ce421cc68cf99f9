"""The deploy tests reuse the integration suite's throwaway MariaDB server (never the system one)."""

from tests.integration.conftest import capture_user, mariadb, mariadb_running  # noqa: F401
