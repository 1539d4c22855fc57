set terminal svg size 900,600 dynamic font 'sans,11'
set output 'mnist10k.svg'
set title 'mnist10k: IVF64,Flat, 10-recall@10 vs list entries scanned per query (mean of 3 seeds)' noenhanced
set logscale x
set xlabel 'entries scanned per query'
set ylabel '10-recall@10' noenhanced
set key bottom right noenhanced
set grid
plot 'mnist10k.dat' index 0 with linespoints title 'k-means', \
  'mnist10k.dat' index 1 with linespoints title 'GMM-sph single distance', \
  'mnist10k.dat' index 2 with linespoints title 'GMM-sph single posterior', \
  'mnist10k.dat' index 3 with linespoints title 'GMM-sph single adaptive', \
  'mnist10k.dat' index 4 with linespoints title 'GMM-sph multi distance', \
  'mnist10k.dat' index 5 with linespoints title 'GMM-sph multi posterior', \
  'mnist10k.dat' index 6 with linespoints title 'GMM-sph multi adaptive', \
  'mnist10k.dat' index 7 with linespoints title 'GMM-diag single distance', \
  'mnist10k.dat' index 8 with linespoints title 'GMM-diag single posterior', \
  'mnist10k.dat' index 9 with linespoints title 'GMM-diag single adaptive', \
  'mnist10k.dat' index 10 with linespoints title 'GMM-diag multi distance', \
  'mnist10k.dat' index 11 with linespoints title 'GMM-diag multi posterior', \
  'mnist10k.dat' index 12 with linespoints title 'GMM-diag multi adaptive'
