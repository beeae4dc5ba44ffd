from textstats.core import average_word_length, top_words, words

__all__ = ["average_word_length", "top_words", "words"]
