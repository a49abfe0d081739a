"""The `smec-vdb` command line (installed as ``smec_vdb.cli``): thin Typer commands over the library."""
