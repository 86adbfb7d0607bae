"""The composition root: the `scs` command (cli.py) and whatever else must see every service.

`shared` is the library every service uses and never imports a service; services never import
each other. Code that puts them together (run a service by name, mount each service's own
commands, collect every service's tables) lives here, and nothing imports this package. The
contracts are `[tool.importlinter]` in pyproject.toml.
"""
