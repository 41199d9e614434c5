{{! transforms-plot.gp: the curves of one panel of transforms.gp.
    Values: index (of transforms.dat), mu1 (a flag), init. }}
plot x with lines dt 2 lw 1.5 lc rgb "black" title "identity", \
     "transforms.dat" index {{index}} using 1:2 with lines lw 2.5 lc rgb "#1f77b4" title "final μ"{{#mu1}}, \
     "transforms.dat" index {{index}} using 1:3 with lines lw 2 dt 4 lc rgb "#ff7f0e" title "μ_1 ({{init}} fit)"{{/mu1}}
