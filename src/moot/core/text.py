"""Small text helpers for messages people read."""


def sentence(text: str) -> str:
    """'the token expired' -> 'The token expired.' (the rest of the text kept as is)."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
