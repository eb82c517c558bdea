"""What only the chapters use: explorers, live widgets, figures, diagrams, tables, notebook glue.

reproduction: Figure 6 and Table 6 from the store; plotly and ipywidgets load on first use.
"""
