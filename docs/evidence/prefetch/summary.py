# Medians of an ab.sh output: python3 summary.py ab-OUTPUT.txt
import statistics as st, sys
f = sys.argv[1]
rows = [l.split() for l in open(f) if l[0].isdigit()]
print(f"Medians of the rounds in {f} (`python3 summary.py {f}`), `-P 16`:\n")
print("| command | A req/s | B req/s | B ÷ A | Redis req/s | A ÷ Redis | B ÷ Redis | A CPU µs | B CPU µs | Redis CPU µs |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in ['set', 'get', 'incr']:
    m = {s: st.median(float(r[3]) for r in rows if r[1] == c and r[2] == s) for s in ('A', 'B', 'redis')}
    u = {s: st.median(float(r[4]) for r in rows if r[1] == c and r[2] == s) for s in ('A', 'B', 'redis')}
    print(f"| {c.upper()} | {m['A']:.0f} | {m['B']:.0f} | {m['B']/m['A']:.2f} | {m['redis']:.0f} | {m['A']/m['redis']:.2f} | {m['B']/m['redis']:.2f} | {u['A']:.2f} | {u['B']:.2f} | {u['redis']:.2f} |")
