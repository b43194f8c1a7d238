"""UI-free view models: what the CLI and the deck show, computed without Textual."""
