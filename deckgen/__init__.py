"""deckgen: Markdown articles of interview questions → Anki decks that update in place."""

__version__ = "0.1.0"
