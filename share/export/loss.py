EPS = 1e-300  # the clamps' floor (DESIGN.md 1)


def theta_of(epoch=None):
    """The slopes and biases [a_t, b_t, a_tau, b_tau] (4M) in use: the one theta, or
    the schedule's theta of epoch (1 to EPOCHS)."""
    if EPOCHS is None:
        return THETAS[0]
    if epoch is None:
        raise ValueError(f"this loss is a schedule of {EPOCHS} epochs: give epoch, 1 to {EPOCHS}")
    e = int(epoch)
    if not 1 <= e <= EPOCHS:
        raise ValueError(f"epoch {epoch}: the schedule has epochs 1 to {EPOCHS}")
    return THETAS[e - 1]


def _scale_of(scale):
    s = SCALE if scale is None else float(scale)
    if SPACE == "cosine" and not (s is not None and s > 0 and math.isfinite(s)):
        raise ValueError("the cosine space needs the cosine head's scale s > 0 (scale=...)")
    return s


def _piece(x, lo, hi, m):
    """The interval k of x clamped to [lo, hi] (M equal intervals), as amlfs computes it."""
    xc = np.clip(x, lo, hi)
    return np.minimum(np.floor((xc - lo) / (hi - lo) * m), m - 1).astype(np.int64)


def loss_numpy(inputs, targets, epoch=None, scale=None):
    """The per-sample loss (N) and the gradient of their mean with respect to the inputs
    (N, C): the logits (prob space) or the cosines (cosine space), float64."""
    theta = np.asarray(theta_of(epoch), np.float64)
    m = len(theta) // 4
    at, bt, au, bu = theta[:m], theta[m:2 * m], theta[2 * m:3 * m], theta[3 * m:]
    x = np.asarray(inputs, np.float64)
    y = np.asarray(targets).astype(np.int64)
    n, c = x.shape
    if y.shape != (n,) or (y < 0).any() or (y >= c).any():
        raise ValueError(f"targets: expected (N) = ({n}) classes 0 to {c - 1}")
    s = _scale_of(scale)
    rows = np.arange(n)
    onehot = np.zeros((n, c), bool)
    onehot[rows, y] = True
    with np.errstate(all="ignore"):
        if SPACE == "cosine":
            cy = x[rows, y]
            k = _piece(cy, -1.0, 1.0, m)
            t_y = at[k] * np.clip(cy, -1.0, 1.0) + bt[k]
            slope_t = np.where((cy >= -1.0) & (cy <= 1.0), at[k], 0.0)
            g = np.where(onehot, t_y[:, None], x)
            z = s * (g - g.max(1, keepdims=True))
        else:
            z = x - x.max(1, keepdims=True)
        e = np.exp(z)
        tail = np.where(onehot, 0.0, e).sum(1)
        z_y = z[rows, y]
        e_y = np.exp(z_y)
        total = e_y + tail
        p = e_y / total
        one_minus_p = tail / total
        log_p = np.where(z_y > -1.0, -np.log1p(tail / e_y), z_y - np.log(total))
        if SPACE == "cosine":
            ku = _piece(p, 0.0, 1.0, m)
            v = au[ku] * np.clip(p, 0.0, 1.0) + bu[ku]
            log_form = np.zeros(n, bool)
            clamped = v < EPS
            A, B = au[ku], bu[ku]
        else:
            kt = _piece(p, 0.0, 1.0, m)
            u = at[kt] * np.clip(p, 0.0, 1.0) + bt[kt]
            through_zero = (kt == 0) & (bt[0] == 0.0) & (at[0] > 0.0) & (u <= 1.0)
            t_clamped = ~through_zero & ((u < EPS) | (u > 1.0))
            u = np.where(t_clamped, np.where(u < EPS, EPS, 1.0), u)
            ku = _piece(u, 0.0, 1.0, m)
            log_form = through_zero & (ku == 0) & (bu[0] == 0.0) & (au[0] > 0.0)
            v = au[ku] * np.clip(u, 0.0, 1.0) + bu[ku]
            clamped = ~log_form & (t_clamped | (v < EPS))
            A, B = au[ku] * at[kt], au[ku] * bt[kt] + bu[ku]
        # -log(A p + B) as -log p - log1p(d), d = (A - 1) + B/p, where that is usable
        d = (A - 1.0) + B / p
        ok = (p > 0.0) & np.isfinite(d) & (d > -1.0)
        loss = np.where(ok, (0.0 - log_p) - np.where(d == 0.0, 0.0, np.log1p(d)), -np.log(v))
        w = np.where(ok, A / (1.0 + d), A * p / v)
        if SPACE == "prob":
            a0 = au[0] * at[0]
            loss = np.where(log_form, (0.0 - log_p) - (0.0 if a0 == 1.0 else math.log(a0)), loss)
            w = np.where(log_form, 1.0, w)
        loss = np.where(clamped, -np.log(np.maximum(v, EPS)), loss)
        w = np.where(clamped, 0.0, w)
    # dL/dz_j = w (p_j - 1[j=y]) / N
    gz = np.where(onehot, -one_minus_p[:, None], e / total[:, None]) * (w / n)[:, None]
    if SPACE == "cosine":
        gz = s * gz
        gz[rows, y] *= slope_t
    return loss, gz


try:
    import torch
except ImportError:  # the NumPy function works without PyTorch
    torch = None

if torch is not None:
    def _piece_t(x, lo, hi, m):
        xc = x.clamp(lo, hi)
        return torch.floor((xc - lo) / (hi - lo) * m).long().clamp(max=m - 1)

    class Loss(torch.nn.Module):
        """The loss as a PyTorch module: forward(inputs, targets[, epoch]) gives the mean
        loss over the batch (reduction "mean", or "sum" or "none"); autograd gives its
        gradient. inputs are logits (N, C) in the prob space, cosines (N, C) in the cosine
        space; computed in float64 (the gradient comes back in the inputs' dtype).
        A schedule takes the epoch (1 to EPOCHS) as an argument or from self.epoch."""

        def __init__(self, scale=None, reduction="mean", epoch=None):
            super().__init__()
            if reduction not in ("mean", "sum", "none"):
                raise ValueError(f"reduction {reduction!r}: expected mean, sum or none")
            self.scale = _scale_of(scale)
            self.reduction = reduction
            self.epoch = epoch
            self.register_buffer("thetas", torch.tensor(THETAS, dtype=torch.float64),
                                 persistent=False)

        def forward(self, inputs, targets, epoch=None):
            e = epoch if epoch is not None else self.epoch
            theta_of(e)  # checks the epoch
            theta = self.thetas[0 if EPOCHS is None else int(e) - 1]
            m = theta.numel() // 4
            at, bt, au, bu = theta[:m], theta[m:2 * m], theta[2 * m:3 * m], theta[3 * m:]
            x = inputs.to(torch.float64)
            n, c = x.shape
            y = targets.long()
            if y.shape != (n,) or bool((y < 0).any()) or bool((y >= c).any()):
                raise ValueError(f"targets: expected (N) = ({n}) classes 0 to {c - 1}")
            rows = torch.arange(n, device=x.device)
            onehot = torch.nn.functional.one_hot(y, c).bool()
            if SPACE == "cosine":
                cy = x[rows, y]
                k = _piece_t(cy.detach(), -1.0, 1.0, m)
                t_y = at[k] * cy.clamp(-1.0, 1.0) + bt[k]
                g = torch.where(onehot, t_y[:, None], x)
                z = self.scale * (g - g.detach().max(1, keepdim=True).values)
            else:
                z = x - x.detach().max(1, keepdim=True).values
            ex = torch.exp(z)
            tail = torch.where(onehot, torch.zeros_like(ex), ex).sum(1)
            z_y = z[rows, y]
            e_y = torch.exp(z_y)
            near = z_y > -1.0
            e_near = torch.where(near, e_y, torch.ones_like(e_y))
            log_p = torch.where(near, -torch.log1p(tail / e_near), z_y - torch.log(e_y + tail))
            with torch.no_grad():  # the pieces in use and which formula applies
                p = torch.exp(log_p)
                one = torch.ones_like(p)
                if SPACE == "cosine":
                    ku = _piece_t(p, 0.0, 1.0, m)
                    v = au[ku] * p.clamp(0.0, 1.0) + bu[ku]
                    log_form = torch.zeros_like(p, dtype=torch.bool)
                    clamped = v < EPS
                    A, B = au[ku], bu[ku]
                else:
                    kt = _piece_t(p, 0.0, 1.0, m)
                    u = at[kt] * p.clamp(0.0, 1.0) + bt[kt]
                    through_zero = (kt == 0) & bool(bt[0] == 0.0) & bool(at[0] > 0.0) & (u <= 1.0)
                    t_clamped = ~through_zero & ((u < EPS) | (u > 1.0))
                    u = torch.where(t_clamped, torch.where(u < EPS, EPS * one, one), u)
                    ku = _piece_t(u, 0.0, 1.0, m)
                    log_form = through_zero & (ku == 0) & bool(bu[0] == 0.0) & bool(au[0] > 0.0)
                    v = au[ku] * u.clamp(0.0, 1.0) + bu[ku]
                    clamped = ~log_form & (t_clamped | (v < EPS))
                    A, B = au[ku] * at[kt], au[ku] * bt[kt] + bu[ku]
                d0 = (A - 1.0) + B / torch.where(p > 0.0, p, one)
                ok = (p > 0.0) & torch.isfinite(d0) & (d0 > -1.0) & ~clamped & ~log_form
                direct = ~ok & ~clamped & ~log_form
                const = -torch.log(torch.clamp(v, min=EPS))
            # -log(A p + B) = -log p - log1p(d), d = (A - 1) + B e^{-log p}: differentiated
            # through log p, so no 1/p^2 appears
            lp_ok = torch.where(ok, log_p, torch.zeros_like(log_p))
            d = (A - 1.0) + B * torch.exp(-lp_ok)
            d = torch.where(ok, d, torch.zeros_like(d))
            loss = torch.where(ok, (0.0 - log_p) - torch.log1p(d), const)
            q = A * torch.exp(log_p) + B
            loss = torch.where(direct, -torch.log(torch.where(direct, q, one)), loss)
            if SPACE == "prob":
                a0 = float(au[0] * at[0])
                loss = torch.where(log_form, (0.0 - log_p) - (0.0 if a0 == 1.0 else math.log(a0)),
                                   loss)
            if self.reduction == "mean":
                return loss.mean()
            if self.reduction == "sum":
                return loss.sum()
            return loss
