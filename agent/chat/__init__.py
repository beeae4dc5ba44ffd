"""The chat terminal: a REPL over the search, with a live view of the tree, steering and git safety."""
