"""`extractor review --serve`: a local web app that turns review into a person's labels.

A queue of the latest results (those that need review first, least confident first), each document's text
as the model saw it with every value marked, and per field: accept, edit (an input typed from the schema) or
"not in the document". What the reviewer does is stored as their labels (kind PERSON) in the labels store
`import-corrections` uses, checked by the schema's own validators, so `eval`, `experiment`, `breakeven`,
`export finetune` and the next `export` count it.

- `forms`: the input of each schema field, and what was typed turned into a value;
- `data`: the queue, one document, storing labels (`ReviewDesk`);
- `page`: the HTML shell, its script and style sheet;
- `server`: HTTP, the token, and the origin rules (`ReviewApp`, `serve`).
"""

from extractor.views.reviewapp.data import FINETUNE_EXAMPLES, ReviewDesk
from extractor.views.reviewapp.server import DEFAULT_HOST, DEFAULT_PORT, ReviewApp, ServeConfig, running, serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "FINETUNE_EXAMPLES", "ReviewApp", "ReviewDesk", "ServeConfig",
           "running", "serve"]
