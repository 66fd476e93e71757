"""The dashboard: the single page at ``/`` that drives the REST API and the /ws socket."""
