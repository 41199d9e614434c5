{{! head.gp: how every script of the report begins (each includes it as a partial).
    The PNG it draws: "out" may be set on the command line (amlfs-report draws into a
    temporary), else png; pngcairo where gnuplot has it, else libgd's png.
    Values: script (NAME.gp), png (NAME.png), width and height (pixels). }}
# {{png}}: written by amlfs-report; `gnuplot {{script}}` in this directory redraws it.
if (!exists("out")) out = "{{png}}"
set encoding utf8
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size {{width}},{{height}} enhanced font ",11"
} else {
    set terminal png size {{width}},{{height}} enhanced
}
set output out
set grid lt 1 lw 1 lc rgb "#e4e4e4"
