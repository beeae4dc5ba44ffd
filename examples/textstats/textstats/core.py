"""Small text statistics."""

from collections import Counter


def words(text):
    """The words of `text`, split on whitespace, with surrounding punctuation removed."""
    return [w.strip(".,;:!?\"'()") for w in text.split() if w.strip(".,;:!?\"'()")]


def average_word_length(text):
    """Mean length of the words in `text`."""
    ws = words(text)
    return sum(len(w) for w in ws) / len(ws)


def top_words(text, n=3):
    """The `n` most common words of `text`, most common first, compared case-insensitively."""
    counts = Counter(w.lower() for w in words(text))
    return [w for w, _ in counts.most_common(n - 1)]
