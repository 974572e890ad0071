"""The paper's analyses: the Table 1 grid (section 3) and the permutation test (section 3.1).

Nothing in the library imports this package.
"""
