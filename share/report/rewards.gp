{{! rewards.gp: each epoch's validation rewards, their mean and the best; data
    rewards.dat. Values: rewarded (a flag: some epoch has a finite reward); metric and a
    flag of its name (top1, top5, loss, accuracy, rank1, map); nepochs, plural (a flag), xmax, xtics, ylo, yhi;
    excluded (per epoch with samples left out: epoch, count). }}
{{>head.gp}}
{{^rewarded}}
set title "validation rewards per epoch" font ",13"
set xrange [0:1]
set yrange [0:1]
unset key
unset tics
set label 1 "no epoch has a finite reward yet" at graph 0.5, graph 0.5 center font ",14"
plot -1 notitle
{{/rewarded}}
{{#rewarded}}
set title "validation rewards per epoch ({{metric}}; {{nepochs}} epoch{{#plural}}s{{/plural}})" font ",13"
set xlabel "epoch"
set ylabel "reward: {{#loss}}-(validation loss){{/loss}}{{#top5}}validation top-5 accuracy{{/top5}}{{#top1}}validation top-1 accuracy{{/top1}}{{#accuracy}}validation verification accuracy{{/accuracy}}{{#rank1}}validation rank-1{{/rank1}}{{#map}}validation mAP{{/map}}"
set xrange [0.5:{{xmax}}]
set xtics {{xtics}}
set yrange [{{ylo}}:{{yhi}}]
set key outside right top
{{#excluded}}
set label "{{count}} excluded" at {{epoch}}, graph 0.03 center font ",9" tc rgb "#d62728"
{{/excluded}}
plot "rewards.dat" index 0 using 4:3 with points pt 7 ps 0.9 lc rgb "#1f77b4" title "sample", \
     "rewards.dat" index 1 using 1:2 with linespoints lw 2 pt 5 ps 0.8 lc rgb "#2ca02c" title "mean", \
     "rewards.dat" index 1 using 4:3 with points pt 6 ps 2.4 lw 2 lc rgb "#d62728" title "best (next start)"
{{/rewarded}}
