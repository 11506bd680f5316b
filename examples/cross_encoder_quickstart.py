"""The sentence-transformers CrossEncoder quickstart with only the import line changed.

Run: python examples/cross_encoder_quickstart.py [MODEL]

The documented model, ``cross-encoder/stsb-distilroberta-base``, comes from the Hugging Face hub;
offline (``HF_HUB_OFFLINE=1``) and not in the hub cache it cannot load, and the error says which
rerankers work offline and how to make them. By default this script uses the STS reranker made by
``st-plugins train-reranker`` (``st-plugins/stsb-reranker``), which, like the documented one, is
trained on the STS benchmark; pass another name or folder to compare.
"""

import sys

from st_plugins.cross_encoder import CrossEncoder

# 1. Load a pretrained CrossEncoder model
model = CrossEncoder(sys.argv[1] if len(sys.argv) > 1 else "st-plugins/stsb-reranker")

# We want to compute the similarity between the query sentence...
query = "A man is eating pasta."

# ... and all sentences in the corpus
corpus = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "A cheetah is running behind its prey.",
]

# 2. We rank all sentences in the corpus for the query
ranks = model.rank(query, corpus)

# Print the scores
print("Query: ", query)
for rank in ranks:
    print(f"{rank['score']:.2f}\t{corpus[rank['corpus_id']]}")

# 3. Alternatively, you can also manually compute the score between two sentences
import numpy as np  # noqa: E402  (where the documented example imports it)

sentence_combinations = [[query, sentence] for sentence in corpus]
scores = model.predict(sentence_combinations)

# Sort the scores in decreasing order to get the corpus indices
ranked_indices = np.argsort(scores)[::-1]
print("Scores:", scores)
print("Indices:", ranked_indices)
