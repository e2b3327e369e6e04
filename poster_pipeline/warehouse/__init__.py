"""The warehouse side: tables, migrations, the load path, sync status and accounts."""
