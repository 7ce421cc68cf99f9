"""The deploy tests reuse the suite's throwaway MariaDB server (``tests/conftest.py``), never the system one."""
