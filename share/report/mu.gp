{{! mu.gp: every component of mu over the epochs, one panel per group of theta, one line
    per interval of the transform's domain (as the paper's Figure 3); data mu.dat.
    Values: space, m (M), sigma, mode, xmax and xtics (the epoch axis); key, a flag: the
    keys of the intervals fit (M <= 16); a_t, b_t, a_tau, b_tau, one item each, with
    ylo, yhi and interval (per interval: its column of mu.dat, label, first). }}
{{>head.gp}}
set multiplot layout 2,2 margins 0.06,0.86,0.07,0.91 spacing 0.075,0.11 title "μ over the epochs ({{space}} space, M = {{m}}, σ = {{sigma}}, mode {{mode}}; θ is drawn from N(μ, σ^2 I))" font ",13"
set xlabel "epoch (that the policy samples)"
set xrange [0.5:{{xmax}}]
set xtics {{xtics}}
{{! one key per row, right of it: t's intervals, then tau's (the same colours in both
    panels of a row) }}
{{#a_t}}
{{#key}}
set key at screen 0.995, screen 0.89 right top box title "intervals of t"
{{/key}}
{{^key}}
unset key
{{/key}}
set title "slopes of t: a_t"
set ylabel "a_t"
{{>mu-panel.gp}}
{{/a_t}}
{{#b_t}}
unset key
set title "biases of t: b_t"
set ylabel "b_t"
{{>mu-panel.gp}}
{{/b_t}}
{{#a_tau}}
{{#key}}
set key at screen 0.995, screen 0.45 right top box title "intervals of τ"
{{/key}}
{{^key}}
unset key
{{/key}}
set title "slopes of τ: a_{τ}"
set ylabel "a_{τ}"
{{>mu-panel.gp}}
{{/a_tau}}
{{#b_tau}}
unset key
set title "biases of τ: b_{τ}"
set ylabel "b_{τ}"
{{>mu-panel.gp}}
{{/b_tau}}
unset multiplot
