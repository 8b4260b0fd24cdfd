#!/usr/bin/python3
"""Byte-level BPE by the rule of docs/data.md ("tokenize bpe"), written
independently of runtime/data/bpe.c: the merges are found by recounting
every pair of every chunk after each merge (no incremental counts), and
text is encoded by applying the merges one after another in the order
they were learned (not by the lowest rank present).

Writes tests/data/bpe_corpus.txt (a small generated corpus: repeated and
rare words, runs of one letter, tabs, blank lines, CRLF lines, non-ASCII
letters) and, for it, tests/golden/bpe/corpus.merges (one merge per line,
"left right") and tests/golden/bpe/corpus.ids (the token ids of the whole
corpus), read by tests/test_bpe.c.

Run from the repository root:
    /usr/bin/python3 tests/gen_golden_bpe.py
"""
from collections import defaultdict

VOCAB = 400            # <pad>, <unk>, 256 bytes, 142 merges at most
BYTE0, FIRST = 2, 258
WS = b" \t\n\x0b\x0c\r"

WORDS = ["the", "then", "there", "these", "and", "an", "a", "in", "into", "begin",
         "beginning", "created", "heaven", "earth", "light", "night", "aaaa", "aa",
         "bbbbbbb", "café", "naïve", "straße", "日本語", "über", "ὕδωρ", "x", "42", "—"]


def corpus():
    """A deterministic text from a linear congruential generator."""
    state = 12345
    def rnd(n):
        nonlocal state
        state = (state * 1103515245 + 12345) % (1 << 31)
        return (state >> 8) % n
    lines = []
    for i in range(400):
        k = 1 + rnd(12)
        words = [WORDS[min(rnd(len(WORDS)), rnd(len(WORDS)))] for _ in range(k)]
        sep = ["  ", "\t", " "][rnd(3)] if i % 7 == 0 else " "
        line = sep.join(words)
        if i % 13 == 0:
            line = "  " + line
        end = "\r\n" if i % 11 == 0 else "\n"
        lines.append(line + end)
        if i % 17 == 0:
            lines.append("\n")
    return "".join(lines).encode("utf-8")


def chunks(b):
    out, start = [], 0
    for i in range(1, len(b)):
        if b[i] in WS and b[i - 1] not in WS:
            out.append(b[start:i])
            start = i
    if b:
        out.append(b[start:])
    return out


def merge_word(w, l, r, new):
    out, i = [], 0
    while i < len(w):
        if i + 1 < len(w) and w[i] == l and w[i + 1] == r:
            out.append(new)
            i += 2
        else:
            out.append(w[i])
            i += 1
    return tuple(out)


def learn(text, nmax):
    words = defaultdict(int)
    for c in chunks(text):
        words[tuple(BYTE0 + x for x in c)] += 1
    merges = []
    while len(merges) < nmax:
        counts = defaultdict(int)
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                counts[(a, b)] += n
        best = None
        for (a, b), n in counts.items():
            if n < 2:
                continue
            if best is None or (-n, a, b) < (-best[0], best[1], best[2]):
                best = (n, a, b)
        if best is None:
            break
        new = FIRST + len(merges)
        merges.append((best[1], best[2]))
        nw = defaultdict(int)
        for w, n in words.items():
            nw[merge_word(w, best[1], best[2], new)] += n
        words = nw
    return merges


def encode(text, merges):
    ids, cache = [], {}
    for c in chunks(text):
        if c not in cache:
            w = tuple(BYTE0 + x for x in c)
            for k, (l, r) in enumerate(merges):
                w = merge_word(w, l, r, FIRST + k)
            cache[c] = w
        ids.extend(cache[c])
    return ids


def main():
    raw = corpus()
    with open("tests/data/bpe_corpus.txt", "wb") as f:
        f.write(raw)
    text = raw.replace(b"\r\n", b"\n")
    merges = learn(text, VOCAB - FIRST)
    ids = encode(text, merges)
    with open("tests/golden/bpe/corpus.merges", "w") as f:
        for l, r in merges:
            f.write("%d %d\n" % (l, r))
    with open("tests/golden/bpe/corpus.ids", "w") as f:
        for i in range(0, len(ids), 20):
            f.write(" ".join(str(x) for x in ids[i:i + 20]) + "\n")
    print("%d bytes, %d merges, %d tokens" % (len(text), len(merges), len(ids)))


if __name__ == "__main__":
    main()
