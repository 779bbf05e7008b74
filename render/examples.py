"""A small gallery of typical model-written code of every kind.

Used to warm every worker before it forks tasks (so fonts, text layout caches
and lazily imported modules are shared copy-on-write, not rebuilt per task)
and by `python -m launch.gallery` as a smoke test of a host's render stack.
"""

EXAMPLES = [
    ("chart", "bar", """
import matplotlib.pyplot as plt
plt.bar(["Q1", "Q2", "Q3", "Q4"], [12, 19, 7, 15], color=["tab:red", "tab:blue", "tab:green", "tab:orange"])
plt.title("Revenue by quarter"); plt.ylabel("M$")
plt.show()
"""),
    ("chart", "lines, log scale", """
import numpy as np
import matplotlib.pyplot as plt
x = np.linspace(1, 10, 50)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(x, x ** 2, label="x^2"); ax.plot(x, np.exp(x / 2), "--", label="exp(x/2)")
ax.set_yscale("log"); ax.legend(loc="upper left"); ax.set_title("Growth")
fig.savefig("growth.png")
"""),
    ("chart", "pie", """
import matplotlib.pyplot as plt
plt.pie([45, 25, 20, 10], labels=["A", "B", "C", "D"], autopct="%1.0f%%", startangle=90)
plt.title("Market share")
"""),
    ("chart", "subplots", """
import numpy as np
import matplotlib.pyplot as plt
rng = np.random.default_rng(0)
fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.5))
a.scatter(rng.normal(size=80), rng.normal(size=80), c="purple", s=12); a.set_title("Scatter")
b.hist(rng.normal(size=500), bins=20, color="teal"); b.set_title("Histogram")
plt.tight_layout(); plt.savefig("out.png"); plt.close()
"""),
    ("table", "markdown", """
| Model | Params | Score |
|:------|-------:|:-----:|
| **Qwen3-VL-8B** | 8.8 B | 71.2 |
| Qwen3-VL-4B | 4.4 B | *66.0* |
| Qwen3-VL-2B | 2.1 B | 58.9 |
"""),
    ("table", "html, merged cells", """
<table>
  <tr><th rowspan="2">Region</th><th colspan="2">Sales</th></tr>
  <tr><th>2024</th><th>2025</th></tr>
  <tr><td>North</td><td align="right">1,204</td><td align="right">1,390</td></tr>
  <tr><td>South</td><td align="right">988</td><td align="right">1,021</td></tr>
</table>
"""),
    ("svg", "icon", """
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 100 100">
  <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
    <stop offset="0" stop-color="#ffcc00"/><stop offset="1" stop-color="#ff6600"/></linearGradient></defs>
  <circle cx="50" cy="50" r="45" fill="url(#g)" stroke="#333" stroke-width="3"/>
  <circle cx="35" cy="40" r="6" fill="#333"/><circle cx="65" cy="40" r="6" fill="#333"/>
  <path d="M30 62 Q50 80 70 62" fill="none" stroke="#333" stroke-width="4" stroke-linecap="round"/>
</svg>
"""),
    ("svg", "shapes and text", """
<svg xmlns="http://www.w3.org/2000/svg" width="240" height="160">
  <rect x="10" y="10" width="100" height="60" rx="8" fill="steelblue"/>
  <g transform="translate(170 45) rotate(30)"><rect x="-30" y="-20" width="60" height="40" fill="crimson"/></g>
  <polygon points="60,150 100,90 140,150" fill="seagreen" stroke="black"/>
  <text x="150" y="140" font-size="20" font-family="DejaVu Sans">SVG</text>
</svg>
"""),
]

EXAMPLES += [
    ("chart", "grouped bars, legend", """
import numpy as np
import matplotlib.pyplot as plt
x = np.arange(4)
fig, ax = plt.subplots(figsize=(7, 4))
ax.bar(x - 0.2, [3, 5, 2, 6], 0.4, label="2024", color="#1f77b4")
ax.bar(x + 0.2, [4, 4, 3, 7], 0.4, label="2025", color="#ff7f0e")
ax.set_xticks(x, ["North", "South", "East", "West"]); ax.set_xlabel("Region"); ax.set_ylabel("Units")
ax.legend(title="Year", loc="upper right"); ax.annotate("peak", xy=(3.2, 7), xytext=(2.2, 6.5), arrowprops=dict(arrowstyle="->"))
ax.grid(axis="y", alpha=0.3)
plt.savefig("bars.png", bbox_inches="tight")
"""),  # noqa: E501 -- example chart source, kept verbatim
    ("chart", "area, box, heatmap", """
import numpy as np
import matplotlib.pyplot as plt
rng = np.random.default_rng(1)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
t = np.arange(12)
axes[0].fill_between(t, 0, np.cumsum(rng.random(12)), alpha=0.6, color="olive"); axes[0].set_title("Area")
axes[1].boxplot([rng.normal(0, s, 60) for s in (1, 2, 3)]); axes[1].set_title("Box")
im = axes[2].imshow(rng.random((6, 6)), cmap="viridis"); fig.colorbar(im, ax=axes[2]); axes[2].set_title("Heatmap")
fig.suptitle("Three panels"); fig.tight_layout()
"""),
]
