#!/usr/bin/python3
"""demo_plot.py THETAS REPORT: the sampled transforms t and tau as data files and a
gnuplot script that draws them (REPORT/transforms.gp -> transforms.png)."""
import sys

import h5py
import numpy as np

thetas, report = sys.argv[1], sys.argv[2]
with h5py.File(thetas) as f:
    theta, m = f["theta"][()], int(f.attrs["intervals"])
x = np.linspace(0, 1, 601)
k = np.minimum(np.floor(x * m), m - 1).astype(int)
cols = [x]
for row in theta:
    cols.append(row[k] * x + row[m + k])          # t
for row in theta:
    cols.append(row[2 * m + k] * x + row[3 * m + k])  # tau
np.savetxt(f"{report}/transforms.dat", np.stack(cols, 1), fmt="%.6f")
b = len(theta)
with open(f"{report}/transforms.gp", "w") as g:
    g.write(f"""set terminal pngcairo size 1100,450 font ",11"
set output "{report}/transforms.png"
set multiplot layout 1,2 title "epoch-1 samples of the loss (B = {b}, M = {m})"
set key off
set grid
set xlabel "p_y"
set title "t(p_y)"
plot x with lines dt 2 lc rgb "black", for [i=2:{b + 1}] "{report}/transforms.dat" using 1:i with lines lw 1.5
set title "tau(t)"
set xlabel "t"
plot x with lines dt 2 lc rgb "black", for [i={b + 2}:{2 * b + 1}] "{report}/transforms.dat" using 1:i with lines lw 1.5
unset multiplot
""")
