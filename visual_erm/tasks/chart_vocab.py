"""Chart vocabulary: the metrics, category dimensions, series names and palettes charts are drawn from.

Kept apart from the generators (`visual_erm.tasks.chart`) because error
injection (`visual_erm.perturb.chart`) draws replacement colours, names and
legend places from the same lists.
"""
from __future__ import annotations

METRICS = (  # name, unit, low, high, decimals
    ("Revenue", "million USD", 5, 120, 1), ("Units sold", "thousands", 2, 80, 1),
    ("Average temperature", "°C", 2, 32, 1), ("Rainfall", "mm", 10, 250, 0),
    ("Energy consumption", "TWh", 20, 600, 0), ("CO2 emissions", "Mt", 5, 400, 0),
    ("Active users", "millions", 1, 90, 1), ("Market share", "%", 3, 45, 1),
    ("Response time", "ms", 20, 400, 0), ("Net profit", "k€", 50, 900, 0),
    ("Visitors", "thousands", 10, 300, 0), ("Exports", "bn USD", 2, 150, 1),
    ("Graduation rate", "%", 40, 98, 1), ("Crop yield", "t/ha", 1, 9, 2),
)  # fmt: skip
DIMENSIONS = {
    "Quarter": ("Q1", "Q2", "Q3", "Q4"),
    "Month": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "Weekday": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "Hour": ("6am", "8am", "10am", "12pm", "2pm", "4pm", "6pm", "8pm"),
    "Country": ("China", "India", "Brazil", "Germany", "Japan", "Canada", "France", "Mexico", "Kenya", "Spain"),
    "Region": ("North America", "Europe", "Asia", "Africa", "Oceania", "Latin America"),
    "Product": ("Laptops", "Phones", "Tablets", "Monitors", "Cameras", "Headphones", "Printers"),
    "Department": ("Sales", "Marketing", "Research", "Support", "Finance", "Legal"),
    "Language": ("Python", "Java", "Go", "Rust", "C++", "TypeScript", "Kotlin"),
}
ORDERED = ("Quarter", "Month", "Weekday", "Hour")
UNORDERED = ("Country", "Region", "Product", "Department", "Language")
GROUPS = (
    ("2022", "2023", "2024"), ("Online", "In-store", "Wholesale"), ("Actual", "Forecast", "Target"),
    ("Men", "Women"), ("Team A", "Team B", "Team C"), ("Urban", "Rural", "Suburban"),
    ("Basic", "Pro", "Enterprise"), ("Model X", "Model Y", "Model Z"), ("North", "South", "East", "West"),
)  # fmt: skip
PALETTES = (
    ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"),
    ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"),
    ("steelblue", "darkorange", "seagreen", "crimson", "slateblue", "goldenrod", "teal", "orchid"),
    ("#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8ab17d", "#6d597a", "#b56576"),
    ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"),
)  # fmt: skip
EXTRA_COLORS = ("black", "gold", "navy", "maroon", "limegreen", "deepskyblue", "#7f3c8d", "#f2b701", "sienna")
CMAPS = ("Blues", "YlOrRd", "YlGnBu", "Greens", "Purples", "OrRd")
LEGEND_LOCS = ("upper left", "upper right", "lower right", "lower left", "center right", "upper center", "best")
MARKERS = ("o", "s", "^", "D", "v")
CITIES = ("Oslo", "Lima", "Cairo", "Seoul", "Denver", "Lyon", "Perth", "Nairobi")
