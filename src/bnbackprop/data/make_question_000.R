# Replays the random draws of the Cross Validated question "Matrix form of
# backpropagation with batch normalization" (seed 000 of the book) and writes
# them, with the question's own R results, to question_000.json beside this file.
#
# Run from this folder with:  Rscript make_question_000.R
# (R from Debian's r-base-core; the book's CI never runs R, it reads the JSON.)
#
# The question's code uses dplyr (only for %>%) and foreach (only for loops);
# neither draws random numbers, so this base-R rewrite makes the same draws in
# the same order after set.seed(1): G1 (28 normals), G2 (4), u (10), X (70
# uniforms, rounded). rnorm/runif have used the same default generators
# (Mersenne-Twister, Inversion) since long before the question was asked.

set.seed(1)
N <- 10
p1 <- 7
p2 <- 4
a <- function(v) {
  v[v < 0] <- 0
  v
}
ap <- function(v) {
  v[v < 0] <- 0
  v[v >= 0] <- 1
  v
}

G1 <- matrix(rnorm(p1 * p2), nrow = p1)
G2 <- rnorm(p2)
gamma <- 1:p2 + 1
beta <- (1:p2 + 1) * -1
u <- rnorm(10)

b <- function(x, bet = beta, gam = gamma) {
  xs <- scale(x)
  gk <- t(matrix(gam)) %x% matrix(rep(1, N))
  bk <- t(matrix(bet)) %x% matrix(rep(1, N))
  gk * xs + bk
}
bi <- function(x, i) {
  xs <- scale(x)
  gk <- t(matrix(gamma[i]))
  bk <- t(matrix(beta[i]))
  suppressWarnings(gk * xs[, i] + bk)
}

X <- matrix(round(runif(N * p1, -5, 5)), nrow = N)
y <- a(b(X %*% G1)) %*% G2 + u

# The question's computations, verbatim but for %>% and foreach.
drdb <- matrix(rep(1, N * 1), nrow = 1) %*% (-2 * u %*% t(G2) * ap(b(X %*% G1)))
loop_drdb <- sapply(1:4, function(i) {
  sum(-2 * u * matrix(ap(bi(X[, i, drop = FALSE] %*% G1[i, ], i))) * G2[i])
})
stub <- (-2 * u %*% t(G2) * ap(b(X %*% G1)))
w <- t(matrix(gamma)) %x% matrix(rep(1, N)) *
  (t(apply(X %*% G1, 2, sd)) %x% matrix(rep(1, N)))
drdG1 <- t(X) %*% (stub * w)
loop_drdG1 <- drdG1 * NA
for (i in 1:7) {
  for (j in 1:4) {
    loop_drdG1[i, j] <- t(X[, i]) %*% diag(w[, j]) %*% (stub[, j])
  }
}
drdg <- t(scale(X %*% G1)) %*% (stub * t(matrix(gamma)) %x% matrix(rep(1, N)))
loop_drdg <- sapply(1:4, function(i) {
  t(scale(X %*% G1)[, i]) %*% (stub[, i, drop = FALSE] * gamma[i])
})

num <- function(v) paste(sprintf("%.17g", as.vector(v)), collapse = ", ")
mat <- function(m) {
  m <- as.matrix(m)
  sprintf('{"nrow": %d, "ncol": %d, "column_major": [%s]}', nrow(m), ncol(m), num(m))
}
entries <- c(
  sprintf('"description": "%s"', paste(
    "Draws of the question's R code after set.seed(1), in its order of draws",
    "(G1, G2, u, X), and its R results, written by make_question_000.R with",
    R.version.string)),
  sprintf('"N": %d', N), sprintf('"p1": %d', p1), sprintf('"p2": %d', p2),
  sprintf('"G1": %s', mat(G1)), sprintf('"G2": %s', mat(G2)), sprintf('"u": %s', mat(u)),
  sprintf('"X": %s', mat(X)), sprintf('"gamma": %s', mat(gamma)),
  sprintf('"beta": %s', mat(beta)),
  sprintf('"r_results": {%s}', paste(c(
    sprintf('"y": %s', mat(y)), sprintf('"drdb": %s', mat(drdb)),
    sprintf('"loop_drdb": %s', mat(loop_drdb)), sprintf('"drdG1": %s', mat(drdG1)),
    sprintf('"loop_drdG1": %s', mat(loop_drdG1)), sprintf('"drdg": %s', mat(drdg)),
    sprintf('"loop_drdg": %s', mat(loop_drdg))), collapse = ", "))
)
writeLines(paste0("{\n  ", paste(entries, collapse = ",\n  "), "\n}"), "question_000.json")
print(drdb)
print(loop_drdb)
print(loop_drdG1)
print(drdG1)
print(drdg)
print(loop_drdg)
