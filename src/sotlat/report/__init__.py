"""Reports: the paper's figures, measurement quality and capacity planning, as a self-contained HTML page."""
