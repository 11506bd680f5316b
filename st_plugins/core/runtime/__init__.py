"""The one inference runtime: onnxruntime + tokenizers + numpy, no torch.

It owns what every encoder shares on the CPU: tokenization with the max-length and prompt-length
rules (:mod:`.tokenizer`), batching by token length and the batch loop (:mod:`.loop`), pooling /
Dense / Normalize (:mod:`.pooling`, :mod:`.heads`), the ONNX Runtime session (:mod:`.session`), the
on-disk graph cache (:mod:`.store`) and finding or building a model's graph (:mod:`.graphs`).
``SentenceTransformer`` and ``CrossEncoder`` run on it by default; torch is the training and GPU
engine (:mod:`st_plugins.core.torch_models`), imported only when something needs it.
"""
