{{! transforms.gp: t and tau at the final mu, the identity dashed, mu_1 dash-dotted when
    it differs (mu1); data transforms.dat (index 0 t, index 1 tau).
    Values: epoch (of the final policy), space, m, init (mu_1's fit); cosine and mu1,
    flags; t_panel and tau_panel, one item each with the index of its data. }}
{{>head.gp}}
set multiplot layout 1,2 title "the transforms at the final μ (policy of epoch {{epoch}}, {{space}} space, M = {{m}})" font ",13"
set key top left box opaque
set samples 201
{{#cosine}}
set title "t: the target logit is s·t(cos θ_y)"
set xlabel "cos θ_y (target cosine)"
set ylabel "t(cos θ_y)"
set xrange [-1:1]
{{/cosine}}
{{^cosine}}
set title "t(p_y), then clamped to [ε, 1]"
set xlabel "p_y"
set ylabel "t(p_y)"
set xrange [0:1]
{{/cosine}}
{{#t_panel}}
{{>transforms-plot.gp}}
{{/t_panel}}
set title "τ(u), then clamped to [ε, ∞); L = -log τ({{#cosine}}softmax(f')_y{{/cosine}}{{^cosine}}t(p_y){{/cosine}})"
set xlabel "u = {{#cosine}}softmax(f')_y{{/cosine}}{{^cosine}}t(p_y){{/cosine}}"
set ylabel "τ(u)"
set xrange [0:1]
{{#tau_panel}}
{{>transforms-plot.gp}}
{{/tau_panel}}
unset multiplot
