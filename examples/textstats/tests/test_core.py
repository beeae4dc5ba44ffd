from textstats import average_word_length, top_words, words


def test_words_strips_punctuation():
    assert words("Hello, world!") == ["Hello", "world"]


def test_average_word_length():
    assert average_word_length("ab abcd") == 3.0


def test_average_word_length_empty():
    assert average_word_length("") == 0.0
    assert average_word_length("   ") == 0.0


def test_top_words_counts():
    assert top_words("a a a b b c", 2) == ["a", "b"]


def test_top_words_case_insensitive():
    assert top_words("The the THE cat", 1) == ["the"]
