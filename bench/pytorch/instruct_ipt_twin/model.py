"""The backbone, layer for layer as crates/ipt-model and crates/ipt-modulation compute it."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def round_half_away(value: float) -> int:
    """Rust's f64::round for positive values (Python's round() rounds half to even)."""
    return int(math.floor(value + 0.5))


def rank_for(policy: dict, rows: int, columns: int) -> int:
    """RankPolicy::rank: the rank of a rows x columns bias, in [1, min(rows, columns)]."""
    full = max(min(rows, columns), 1)
    if policy["kind"] == "constant":
        wanted = policy["rank"]
    else:
        wanted = round_half_away(policy["ratio"] * full)
    return min(max(wanted, 1), full)


class TaskWeights:
    """[batch, tasks] task weights and the tasks active anywhere in the batch."""

    def __init__(self, weights: torch.Tensor):
        self.weights = weights
        self.active = [t for t in range(weights.shape[1]) if float(weights[:, t].abs().sum()) > 0.0]


class TaskBias(nn.Module):
    def __init__(self, rows: int, columns: int, rank: int):
        super().__init__()
        self.b1 = nn.Parameter(torch.zeros(rows, rank))
        self.b2 = nn.Parameter(torch.zeros(rank, columns))

    def dense(self) -> torch.Tensor:
        return self.b1 @ self.b2


class ModulatedConv2d(nn.Module):
    """Same-padding conv with weight W + sum_t a[b, t] * B1_t @ B2_t per sample."""

    def __init__(self, cin, cout, kernel, groups, bias, group, modulation):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin // groups, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        rows, columns = cout, cin // groups * kernel * kernel
        tasks = 0
        if modulation is not None and group in modulation["targets"]:
            tasks = len(modulation["tasks"])
            rank = rank_for(modulation["rank"], rows, columns)
        self.task_biases = nn.ModuleList([TaskBias(rows, columns, rank) for _ in range(tasks)])
        self.groups = groups
        self.pad = kernel // 2

    def forward(self, x, tasks=None):
        if tasks is None or len(self.task_biases) == 0 or not tasks.active:
            return F.conv2d(x, self.weight, self.bias, padding=self.pad, groups=self.groups)
        batch, cin, height, width = x.shape
        out, in_per_group, kernel, _ = self.weight.shape
        weight = self.weight.reshape(1, out, -1)
        for task in tasks.active:
            bias = self.task_biases[task].dense().reshape(1, out, -1)
            weight = weight + bias * tasks.weights[:, task].reshape(batch, 1, 1)
        weight = weight.expand(batch, out, weight.shape[2]).reshape(batch * out, in_per_group, kernel, kernel)
        y = F.conv2d(x.reshape(1, batch * cin, height, width), weight, None, padding=self.pad, groups=batch * self.groups)
        y = y.reshape(batch, out, height, width)
        return y if self.bias is None else y + self.bias.reshape(1, out, 1, 1)


class ChannelNorm(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        centred = x - x.mean(dim=1, keepdim=True)
        variance = centred.square().mean(dim=1, keepdim=True)
        normalised = centred / torch.sqrt(variance + 1e-5)
        return normalised * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)


def l2_normalize(x):
    return x / x.square().sum(dim=-1, keepdim=True).sqrt().clamp_min(1e-12)


def window_partition(x, window):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // window, window, w // window, window).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, window * window)


def window_merge(x, batch, height, width, window):
    channels = x.shape[1]
    x = x.reshape(batch, height // window, width // window, channels, window, window)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, height, width)


def grid_partition(x, grid):
    b, c, h, w = x.shape
    return x.reshape(b, c, grid, h // grid, grid, w // grid).permute(0, 3, 5, 2, 4, 1).reshape(-1, grid * grid, c)


def grid_merge(x, batch, height, width, grid):
    channels = x.shape[2]
    x = x.reshape(batch, height // grid, width // grid, grid, grid, channels)
    return x.permute(0, 5, 3, 1, 4, 2).reshape(batch, channels, height, width)


class FocalContextAttention(nn.Module):
    def __init__(self, channels, heads, window, shifted, layer):
        super().__init__()
        self.qkv = layer("qkv", channels, 3 * channels, 1, 1, False)
        self.qkv_dwconv = layer("qkv", 3 * channels, 3 * channels, 3, 3 * channels, False)
        self.temperature = nn.Parameter(torch.ones(heads))
        self.attn_proj = layer("attn_proj", channels, channels, 1, 1, False)
        self.heads, self.window = heads, window
        self.shift = window // 2 if shifted else 0

    def forward(self, x, tasks=None):
        batch, channels, height, width = x.shape
        head_dim = channels // self.heads
        qkv = self.qkv_dwconv(self.qkv(x, tasks), tasks)
        if self.shift:
            qkv = torch.roll(qkv, shifts=(-self.shift, -self.shift), dims=(2, 3))
        windows = window_partition(qkv, self.window)
        count, _, pixels = windows.shape
        q, k, v = windows.reshape(count, 3, self.heads, head_dim, pixels).unbind(1)
        q, k = l2_normalize(q), l2_normalize(k)
        logits = q @ k.transpose(2, 3) * self.temperature.reshape(1, self.heads, 1, 1)
        out = torch.softmax(logits, dim=3) @ v
        out = window_merge(out.reshape(count, channels, pixels), batch, height, width, self.window)
        if self.shift:
            out = torch.roll(out, shifts=(self.shift, self.shift), dims=(2, 3))
        return self.attn_proj(out, tasks)


class GridAttention(nn.Module):
    def __init__(self, channels, heads, grid, layer):
        super().__init__()
        self.qkv = layer("qkv", channels, 3 * channels, 1, 1, False)
        self.attn_proj = layer("attn_proj", channels, channels, 1, 1, False)
        self.heads, self.grid = heads, grid

    def forward(self, x, tasks=None):
        batch, channels, height, width = x.shape
        head_dim = channels // self.heads
        tokens = grid_partition(self.qkv(x, tasks), self.grid)
        count, length, _ = tokens.shape
        q, k, v = (t.transpose(1, 2) for t in tokens.reshape(count, length, 3, self.heads, head_dim).unbind(2))
        logits = q @ k.transpose(2, 3) * head_dim ** -0.5
        out = (torch.softmax(logits, dim=3) @ v).transpose(1, 2).reshape(count, length, channels)
        return self.attn_proj(grid_merge(out, batch, height, width, self.grid), tasks)


class LocallyEnhancedFfn(nn.Module):
    def __init__(self, channels, hidden, layer):
        super().__init__()
        self.project_in = layer("ffn", channels, 2 * hidden, 1, 1, True)
        self.dwconv = layer("ffn", 2 * hidden, 2 * hidden, 3, 2 * hidden, True)
        self.project_out = layer("ffn", hidden, channels, 1, 1, True)

    def forward(self, x, tasks=None):
        gate, value = self.dwconv(self.project_in(x, tasks), tasks).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value, tasks)


class IptBlock(nn.Module):
    def __init__(self, config, level, shifted, layer):
        super().__init__()
        channels = config["width"] << level
        heads = config["heads"][level]
        hidden = max(round_half_away(channels * config["ffn_expansion"]), 1)
        self.norm_focal = ChannelNorm(channels)
        self.focal = FocalContextAttention(channels, heads, config["window_size"], shifted, layer)
        self.norm_grid = ChannelNorm(channels)
        self.grid = GridAttention(channels, heads, config["grid_size"], layer)
        self.norm_ffn = ChannelNorm(channels)
        self.ffn = LocallyEnhancedFfn(channels, hidden, layer)

    def forward(self, x, tasks=None):
        x = x + self.focal(self.norm_focal(x), tasks)
        x = x + self.grid(self.norm_grid(x), tasks)
        return x + self.ffn(self.norm_ffn(x), tasks)


class Stage(nn.Module):
    def __init__(self, config, level, count, layer):
        super().__init__()
        self.blocks = nn.ModuleList([IptBlock(config, level, index % 2 == 1, layer) for index in range(count)])

    def forward(self, x, tasks=None):
        for block in self.blocks:
            x = block(x, tasks)
        return x


class Downsample(nn.Module):
    def __init__(self, channels, layer):
        super().__init__()
        self.conv = layer("downsample", channels, channels // 2, 3, 1, False)

    def forward(self, x, tasks=None):
        return F.pixel_unshuffle(self.conv(x, tasks), 2)


class Upsample(nn.Module):
    def __init__(self, channels, layer):
        super().__init__()
        self.conv = layer("upsample", channels, 2 * channels, 3, 1, False)

    def forward(self, x, tasks=None):
        return F.pixel_shuffle(self.conv(x, tasks), 2)


LEVELS = 4


class IptModel(nn.Module):
    """IptConfig::init / init_modulated: `config` and `modulation` are the weight file's JSON."""

    def __init__(self, config, modulation=None):
        super().__init__()

        def layer(group, cin, cout, kernel, groups, bias):
            return ModulatedConv2d(cin, cout, kernel, groups, bias, group, modulation)

        width = config["width"]
        self.embedder = layer("embedder", config["image_channels"], width, 3, 1, True)
        self.encoder = nn.ModuleList([Stage(config, lv, config["encoder_blocks"][lv], layer) for lv in range(LEVELS)])
        self.downsample = nn.ModuleList([Downsample(width << lv, layer) for lv in range(LEVELS - 1)])
        self.upsample = nn.ModuleList([Upsample(width << (lv + 1), layer) for lv in range(LEVELS - 1)])
        self.channel_reduction = nn.ModuleList(
            [layer("channel_reduction", 2 * (width << lv), width << lv, 1, 1, False) for lv in range(LEVELS - 1)]
        )
        self.decoder = nn.ModuleList([Stage(config, lv, config["decoder_blocks"][lv], layer) for lv in range(LEVELS - 1)])
        self.refinement = Stage(config, 0, config["refinement_blocks"], layer)
        self.output = layer("output", width, config["image_channels"], 3, 1, True)
        window_and_grid = math.lcm(config["window_size"], config["grid_size"])
        self.size_multiple = window_and_grid << (LEVELS - 1)

    def forward(self, image, tasks=None):
        x = self.embedder(image, tasks)
        skips = []
        for level in range(LEVELS - 1):
            x = self.encoder[level](x, tasks)
            skips.append(x)
            x = self.downsample[level](x, tasks)
        x = self.encoder[LEVELS - 1](x, tasks)
        for level in reversed(range(LEVELS - 1)):
            x = self.upsample[level](x, tasks)
            x = self.channel_reduction[level](torch.cat([x, skips.pop()], dim=1), tasks)
            x = self.decoder[level](x, tasks)
        x = self.refinement(x, tasks)
        return self.output(x, tasks) + image

    def restore(self, image, tasks=None):
        """Periodic reflect-padding of the bottom/right edges to the size multiple, then crop."""
        height, width = image.shape[2:]
        padded = _reflect_pad(_reflect_pad(image, 2, self.size_multiple), 3, self.size_multiple)
        return self.forward(padded, tasks)[:, :, :height, :width]


def _reflect_pad(x, axis, multiple):
    length = x.shape[axis]
    padded = -(-length // multiple) * multiple
    if padded == length:
        return x
    period = 2 * (length - 1)

    def index(i):
        if length == 1:
            return 0
        phase = i % period
        return phase if phase < length else period - phase

    indices = torch.tensor([index(i) for i in range(padded)], dtype=torch.long, device=x.device)
    return x.index_select(axis, indices)
