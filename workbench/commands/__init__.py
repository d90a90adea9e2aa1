"""CLI commands, one module per area; each exposes ``register(app)``. ``workbench.cli`` assembles them."""
