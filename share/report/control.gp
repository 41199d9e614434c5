{{! control.gp: the best validation reward of each epoch in the run and in its control;
    data control.dat. Values: rewarded (a flag: either has a finite reward), metric,
    xmax, xtics, ylo, yhi, run_mode, control_mode. }}
{{>head.gp}}
{{^rewarded}}
set title "best validation reward per epoch, run and control" font ",13"
set xrange [0:1]
set yrange [0:1]
unset key
unset tics
set label 1 "neither run has a finite reward yet" at graph 0.5, graph 0.5 center font ",14"
plot -1 notitle
{{/rewarded}}
{{#rewarded}}
set title "best validation reward per epoch ({{metric}}): the search against its control" font ",13"
set xlabel "epoch"
set ylabel "best validation reward ({{metric}})"
set xrange [0.5:{{xmax}}]
set xtics {{xtics}}
set yrange [{{ylo}}:{{yhi}}]
set key bottom right
plot "control.dat" using 1:2 with linespoints lw 2 pt 7 ps 0.9 lc rgb "#d62728" title "run ({{run_mode}})", \
     "control.dat" using 1:3 with linespoints lw 2 pt 5 ps 0.9 dt 2 lc rgb "#1f77b4" title "control ({{control_mode}})"
{{/rewarded}}
