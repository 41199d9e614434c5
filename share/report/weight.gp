{{! weight.gp: the gradient weight of the final mu's loss relative to cross-entropy (the
    normalised softmax in the cosine space), -p_y dL/dp_y against p_y; data weight.dat.
    Values: space, epoch (of the final policy), init, ylo, yhi; cosine and mu1, flags. }}
{{>head.gp}}
set title "gradient weight relative to {{#cosine}}the normalised softmax{{/cosine}}{{^cosine}}cross-entropy{{/cosine}}, -p_y ∂L/∂p_y ({{space}} space)" font ",13"
set xlabel "{{#cosine}}p_y = softmax(s·t(cos θ_y), s·cos θ_j)_y{{/cosine}}{{^cosine}}p_y (probability of the target class){{/cosine}}"
set ylabel "w = -p_y ∂L/∂p_y"
set xrange [0:1]
# the range holds 0, 1 and the curves, but a pole where τ nears 0 is cut
set yrange [{{ylo}}:{{yhi}}]
set key top right box opaque
set samples 201
plot 1 with lines dt 2 lw 1.5 lc rgb "black" title "{{#cosine}}the normalised softmax{{/cosine}}{{^cosine}}cross-entropy{{/cosine}} (1)", \
     "weight.dat" index 0 using 1:2 with lines lw 2.5 lc rgb "#1f77b4" title "final μ (policy of epoch {{epoch}})"{{#mu1}}, \
     "weight.dat" index 1 using 1:2 with lines lw 2 dt 4 lc rgb "#ff7f0e" title "μ_1 ({{init}} fit)"{{/mu1}}
