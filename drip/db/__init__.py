"""PostgreSQL I/O, and only here: connections, migrations, history writes, named queries."""
