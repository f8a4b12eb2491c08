"""Standard-library-only building blocks that every package may import, the PAM login in radius mode included:
nothing here imports the core, a door or a third-party package."""

__all__: list[str] = []
