"""Where examples come from and how text becomes tokens. No torch.

- :mod:`~textrl.data.loading`: (document, references) examples from the built-in corpus, the
  Hugging Face hub or local files (:func:`load_examples`, :class:`Example`, :class:`ExampleSet`).
- :mod:`~textrl.data.builtin_corpus`: the offline, seeded synthetic corpus (``data="builtin"``).
- :mod:`~textrl.data.tokenizer`: the subword tokenizer that defines the action space
  (:class:`TextTokenizer`, trained and cached, or any Hugging Face fast tokenizer).
"""

from textrl.data.loading import BUILTIN, Example, ExampleSet, canonical_split, load_examples

__all__ = ["BUILTIN", "Example", "ExampleSet", "canonical_split", "load_examples"]
