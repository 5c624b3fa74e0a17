"""Embed every subtask text the grammar can produce (+ words, + delexicalised forms) for the GPU box."""
from vla_stack.sim import skills
from vla_stack.text import default_encoder
from vla_stack.world_model import objects
from vla_stack.world_model.words import split_words, word_tokens

texts = []
for s in skills.SKILLS.values():
    for o in s.objects:
        for t in (s.targets or ("",)):
            if t == o:
                continue
            texts.append(s.template.format(object=skills.OBJECT_WORDS[o], target=skills.OBJECT_WORDS.get(t, "")))
delex = [objects.delexicalise(t, objects.DEFAULT_OBJECT_WORDS) for t in texts]
allt = sorted(set(texts + delex))
enc = default_encoder()
enc(allt)
word_tokens(allt, enc)
enc(["stack the blue cube on the red cube"])
enc.save(".gpu_wm/text_cache.safetensors")
print(len(texts), "texts;", sorted(set(delex)))
