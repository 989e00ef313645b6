"""The ``deepscope`` command line: parse, call the API, show."""
